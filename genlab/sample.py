"""``genlab sample``: write samples of a trained checkpoint to a PNG grid or a .npy array."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torchvision.utils import save_image

from genlab.checkpoint import load_model, pick_device
from genlab.errors import ConfigError

log = logging.getLogger("genlab")
MODES = ("prior", "reconstruct", "interpolate")


def positive_int(value, key: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number <= 0 or number != value:
        raise ConfigError(f"{key}={value!r} must be a positive whole number")
    return number


@torch.no_grad()
def in_chunks(fn, n: int, chunk: int = 1000) -> torch.Tensor:
    """``fn(k)`` for k <= chunk at a time, concatenated on the CPU (large n without running out of memory)."""
    return torch.cat([fn(min(chunk, n - i)).cpu() for i in range(0, n, chunk)])


def draw(model, cfg: DictConfig, generator: torch.Generator) -> tuple[torch.Tensor, int]:
    """Samples in data space for the requested mode, plus the images per grid row."""
    n = positive_int(cfg.n, "n")
    nrow = positive_int(cfg.nrow, "nrow") if cfg.nrow else max(1, int(math.sqrt(n)))
    if not hasattr(model.config, "latent_dim"):
        raise ConfigError(
            f"this checkpoint is a {model.family}, not a generative model: pass a GAN or VAE checkpoint"
        )
    if cfg.mode == "prior":
        return in_chunks(lambda k: model.sample(k, generator=generator), n), nrow
    if (
        cfg.mode == "interpolate"
    ):  # rows of 10 steps: n is rounded down to a multiple of 10 (at least one row)
        steps = 10
        rows = max(1, n // steps)
        z = torch.randn(2 * rows, model.latent_dim, generator=generator)
        return model.interpolation_grid(rows=rows, steps=steps, z=z), steps  # already in [0, 1]
    if not hasattr(model, "reconstruct"):
        raise ConfigError(
            f"mode=reconstruct needs an autoencoder; this checkpoint is a {model.family}: use mode=prior"
        )
    dm = instantiate(model.run_config["dataset"])
    real = dm.real_samples(n, split=cfg.split, generator=generator).to(model.device)
    recon = model.reconstruct(real)
    pairs = torch.stack([real, recon], dim=1).flatten(0, 1)  # input, reconstruction, input, ...
    return pairs, 2 * max(1, nrow // 2)


def sample(cfg: DictConfig) -> str:
    out = Path(cfg.out)
    if out.suffix not in (".png", ".npy"):
        raise ConfigError(f"out={cfg.out}: the file must end in .png (grid) or .npy (raw array)")
    if cfg.mode not in MODES:
        raise ConfigError(f"mode={cfg.mode!r} is not known; allowed: {', '.join(MODES)}")
    model = load_model(cfg.ckpt, pick_device(cfg.device))
    generator = torch.Generator().manual_seed(int(cfg.seed))
    with torch.no_grad():
        x, nrow = draw(model, cfg, generator)
    if cfg.mode != "interpolate":
        x = model.to_unit(x)
    x = x.float().cpu()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp" + out.suffix)
    if out.suffix == ".npy":
        np.save(tmp, x.numpy())
    elif not model.spec.is_image:
        raise ConfigError("this model generates 2D points, not images: use out=<file>.npy")
    else:
        save_image(x, tmp, nrow=nrow, padding=2, pad_value=1.0)
    os.replace(tmp, out)
    print(f"wrote {len(x)} {'images' if model.spec.is_image else 'points'} ({cfg.mode}) to {out}")
    return str(out)

"""``genlab sample``: write samples of a trained checkpoint to a PNG grid or a .npy array."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torchvision.utils import save_image

from genlab.atomic import write_atomic
from genlab.checkpoint import LoadedRun, load_run, pick_device
from genlab.config.schema import build_typed, check_at_least, check_choice, check_seed, require
from genlab.errors import ConfigError
from genlab.models.capabilities import Reconstructor, Sampler
from genlab.phases import Phases, Progress
from genlab.resources import require_memory

log = logging.getLogger("genlab")
MODES = ("prior", "reconstruct", "interpolate")
INTERPOLATION_STEPS = 10


@dataclass(frozen=True)
class SampleConfig:
    """The keys of ``configs/sample.yaml``."""

    # a checkpoint written by genlab train
    ckpt: str | None = None
    # number of samples
    n: int = 64
    # .png: a grid; .npy: the raw array in [0, 1] (N, C, H, W), or (N, 2) for 2D data; null: the run's
    # samples/ folder, <run dir>/samples/<ckpt>-<mode>-n<n>-seed<seed>.png (.npy for 2D data)
    out: str | None = None
    # same seed, same samples
    seed: int = 0
    # prior | reconstruct (VAE) | interpolate
    mode: str = "prior"
    # images per grid row (null: sqrt(n))
    nrow: int | None = None
    # reconstruct mode: the split of the run's dataset to reconstruct
    split: str = "test"
    # auto | cpu | cuda | cuda:N
    device: str = "auto"
    task: str = "sample"

    def __post_init__(self) -> None:
        require(bool(self.ckpt), "ckpt is required: genlab sample ckpt=<run dir>/checkpoints/last.ckpt")
        check_at_least("n", self.n, 1, 64)
        require(
            self.out is None or Path(self.out).suffix in (".png", ".npy"),
            f"out={self.out}: the file must end in .png (grid) or .npy (raw array)",
        )
        check_seed("seed", self.seed, 0)
        check_choice("mode", self.mode, MODES)
        if self.nrow is not None:
            check_at_least("nrow", self.nrow, 1, 8)
        check_choice("split", self.split, ("train", "test", "val"))


def command_config(schema: type, cfg: DictConfig) -> Any:
    """A tool command's typed config from its composed Hydra config (``paths`` is not its own key)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

    try:
        raw = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as e:
        raise ConfigError(f"{e.full_key} is required: pass {e.full_key}=<value>") from e
    except OmegaConfBaseException as e:
        raise ConfigError(" ".join(str(e).split())[:200]) from e
    raw.pop("paths", None)
    return build_typed(schema, raw, "")


def check_writable(path: Path, key: str) -> None:
    """Fail before any work when ``path`` cannot be written (missing permission, read-only or full disk)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.with_name(f".{path.name}.probe.tmp")
        probe.write_bytes(b"genlab")
        probe.unlink()
    except OSError as e:
        reason = f"{e.filename} is not a directory" if isinstance(e, FileExistsError) else e.strerror or e
        raise ConfigError(f"{key}={path} cannot be written ({reason}); choose another {key}=<file>") from e


def write_output(x: torch.Tensor, out: Path, nrow: int) -> None:
    if out.suffix == ".npy":
        write = lambda f: np.save(f, x.numpy())  # noqa: E731
    else:
        write = lambda f: save_image(x, f, format="png", nrow=nrow, padding=2, pad_value=1.0)  # noqa: E731
    try:
        write_atomic(out, write)
    except OSError as e:
        raise ConfigError(
            f"out={out} cannot be written ({e.strerror or e}); choose another out=<file>"
        ) from e


def draw(loaded: LoadedRun, cfg: SampleConfig, generator: torch.Generator) -> tuple[torch.Tensor, int]:
    """Samples in [0, 1] (or raw 2D points) for the requested mode, plus the images per grid row."""
    model, n = loaded.model, cfg.n
    nrow = cfg.nrow or max(1, int(math.sqrt(n)))
    if not isinstance(model, Sampler):
        raise ConfigError(
            f"ckpt={cfg.ckpt} is a {model.family}, not a generative model: pass a GAN or VAE checkpoint"
        )
    if cfg.mode == "prior":
        with Phases("sample", announce=False).phase("sampling", n, "samples") as progress:
            x = in_chunks(lambda k: model.sample(k, generator=generator), n, progress=progress)
        return model.to_unit(x), nrow
    if (
        cfg.mode == "interpolate"
    ):  # rows of 10 steps: n is rounded down to a multiple of 10 (at least one row)
        rows = max(1, n // INTERPOLATION_STEPS)
        z = torch.randn(2 * rows, model.latent_dim, generator=generator)
        return model.interpolation_grid(rows=rows, steps=INTERPOLATION_STEPS, z=z), INTERPOLATION_STEPS
    if not isinstance(model, Reconstructor):
        raise ConfigError(
            f"mode=reconstruct needs an autoencoder; ckpt={cfg.ckpt} is a {model.family}: use mode=prior"
        )
    run = loaded.run
    datamodule = run.dataset_class(run.dataset, run.data)
    real = datamodule.real_samples(n, split=cfg.split, generator=generator).to(model.device)
    recon = model.reconstruct(real)
    pairs = torch.stack([real, recon], dim=1).flatten(0, 1)  # input, reconstruction, input, ...
    return model.to_unit(pairs), 2 * max(1, nrow // 2)


@torch.no_grad()
def in_chunks(fn, n: int, chunk: int = 1000, progress: Progress | None = None) -> torch.Tensor:
    """``fn(k)`` for k <= chunk at a time, concatenated on the CPU (large n without running out of memory)."""
    parts = []
    for i in range(0, n, chunk):
        parts.append(fn(min(chunk, n - i)).cpu())
        if progress is not None:
            progress.update(len(parts[-1]))
    return torch.cat(parts)


def default_out(cfg: SampleConfig) -> Path:
    """``out: null``: the samples of a checkpoint go to its run's ``samples/`` folder (beside the run's own
    grids, removed with the run, never overwriting another run's), named after checkpoint, mode, n and seed."""
    ckpt = Path(cfg.ckpt)
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    return run_dir / "samples" / f"{ckpt.stem}-{cfg.mode}-n{cfg.n}-seed{cfg.seed}.png"


def sample(cfg: DictConfig) -> str:
    scfg = command_config(SampleConfig, cfg)
    device = pick_device(scfg.device)
    out = Path(scfg.out) if scfg.out else default_out(scfg)
    check_writable(out, "out")
    loaded = load_run(scfg.ckpt, device)
    spec = loaded.run.data
    if not scfg.out and not spec.is_image:
        out = out.with_suffix(".npy")
    if out.suffix == ".png" and not spec.is_image:
        raise ConfigError(
            f"out={out} is a PNG grid but this model generates 2D points, not images: use out=<file>.npy"
        )
    copies = 2 if scfg.mode == "reconstruct" else 1
    require_memory(scfg.n * spec.dim * 4 * copies * 2, f"n={scfg.n} samples", "lower n")
    generator = torch.Generator().manual_seed(scfg.seed)
    with torch.no_grad():
        x, nrow = draw(loaded, scfg, generator)
    x = x.float().cpu()
    write_output(x, out, nrow)
    print(f"wrote {len(x)} {'images' if spec.is_image else 'points'} ({scfg.mode}) to {out}")
    return str(out)


__all__ = ["SampleConfig", "command_config", "sample"]

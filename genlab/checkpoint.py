"""Loading genlab checkpoints for sampling and evaluation, with clear errors for bad files."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class

from genlab.errors import CheckpointError, ConfigError

# checkpoint["genlab"] = {"class": "genlab.models.gan.GAN", "config": <resolved run config as plain dict>}
META_KEY = "genlab"


def pick_device(name: str, key: str = "device") -> torch.device:
    """auto | cpu | cuda | cuda:N -> a torch device, with one-line errors."""
    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name != "cpu" and not (name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit())):
        raise ConfigError(f"{key}={name!r} is not known; allowed: auto, cpu, cuda, cuda:N")
    if name != "cpu" and not torch.cuda.is_available():
        raise ConfigError(f"{key}={name} but no CUDA device is available; use {key}=cpu")
    return torch.device(name)


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with one-line errors for missing, truncated or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass ckpt=<run dir>/checkpoints/last.ckpt")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"checkpoint {path} cannot be read (truncated or not a PyTorch file: {reason[:120]}); "
            f"use another checkpoint, e.g. <run dir>/checkpoints/last.ckpt"
        ) from e
    if not isinstance(ckpt, dict) or META_KEY not in ckpt or "state_dict" not in ckpt:
        raise CheckpointError(
            f"{path} is not a genlab checkpoint (no '{META_KEY}' metadata); pass a checkpoint written by `genlab train`"
        )
    return ckpt


def run_config(path: str | Path) -> dict[str, Any]:
    """The resolved config of the run that wrote the checkpoint (dataset, model, optimizer, seed, ...)."""
    return read_checkpoint(path)[META_KEY]["config"]


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild the model from a checkpoint (hparams + weights, EMA included), in eval mode on ``device``."""
    ckpt = read_checkpoint(path, map_location="cpu")
    try:
        cls = get_class(ckpt[META_KEY]["class"])
    except Exception as e:  # noqa: BLE001 - any import problem means the class is not available
        raise CheckpointError(
            f"{path}: model class {ckpt[META_KEY].get('class')!r} is not available in this genlab"
        ) from e
    model = cls(**ckpt["hyper_parameters"])
    model.load_state_dict(ckpt["state_dict"])
    model.run_config = ckpt[META_KEY]["config"]
    return model.to(device).eval()

"""Checkpoints as untrusted input: one loader for ``genlab sample``, ``genlab eval`` and ``train ckpt_path=``.

A genlab checkpoint carries a plain-data run record under ``checkpoint["genlab"]``: the model family and
dataset names (registry keys, never import paths), the typed configs, the resolved data spec and the
versions that wrote it. Loading reads the file with ``torch.load(weights_only=True)``, maps the names through
genlab's registries only, re-validates the stored configs with the same schemas as ``genlab train``, checks
that the weights fit the model those configs describe, and ends every failure in one
:class:`~genlab.utils.errors.CheckpointError` line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from genlab.utils.errors import CheckpointError, ConfigError

RECORD_KEY = "genlab"
FORMAT = 2
HINT = "pass a checkpoint written by `genlab train`, e.g. <run dir>/checkpoints/last.ckpt"


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


def versions() -> dict[str, str]:
    import pytorch_lightning as pl

    from genlab import __version__

    return {"genlab": str(__version__), "torch": str(torch.__version__), "lightning": str(pl.__version__)}


def run_record(run) -> dict[str, Any]:
    """What every checkpoint of ``run`` carries (plain containers only)."""
    return {
        "format": FORMAT,
        "family": run.model_family,
        "dataset": run.dataset.name,
        "config": run.to_plain(),
        "data_spec": run.data.to_dict(),
        "versions": versions(),
    }


def read_checkpoint(path: str | Path, key: str = "ckpt") -> dict[str, Any]:
    """The checkpoint dict at ``path``: read with ``weights_only=True``, its structure checked."""
    ckpt = load_tensors_only(path, key)
    record = ckpt.get(RECORD_KEY) if isinstance(ckpt, dict) else None
    if not isinstance(record, dict):
        raise CheckpointError(
            f"{key}={path} is not a genlab checkpoint (no '{RECORD_KEY}' run record); {HINT}"
        )
    if record.get("format") != FORMAT:
        raise CheckpointError(
            f"{key}={path} has run record format {record.get('format')!r}, this genlab reads format {FORMAT}; "
            "retrain with this version or load it with the genlab that wrote it"
        )
    state = ckpt.get("state_dict")
    if not is_state_dict(state):
        raise CheckpointError(f"{key}={path} holds no valid state_dict of named tensors; {HINT}")
    if not isinstance(ckpt.get("global_step", 0), int):
        raise CheckpointError(f"{key}={path} holds an invalid global_step; {HINT}")
    try:
        intact = record.get("weights_sha256") == weights_digest(state, record)
    except (TypeError, ValueError):  # a damaged record that is no longer plain data (e.g. a tuple key)
        intact = False
    if not intact:
        raise CheckpointError(
            f"{key}={path}: its weights do not match the checksum it was written with (damaged or altered); "
            f"use another checkpoint, e.g. an earlier step*.ckpt of the run"
        )
    return ckpt


def read_state_dict(path: str | Path, key: str = "ckpt_path") -> dict[str, Tensor]:
    """A bare model state dict (named tensors and nothing else), read with ``weights_only=True``."""
    state = load_tensors_only(path, key)
    if not is_state_dict(state):
        raise CheckpointError(f"{key}={path} holds no valid state_dict of named tensors; {HINT}")
    return state


def load_tensors_only(path: str | Path, key: str) -> Any:
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{key}={path} is a directory, not a checkpoint file; {HINT}")
    if not path.is_file():
        raise CheckpointError(f"{key}={path} does not exist; {HINT}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - whatever a damaged or hostile file makes the reader raise
        reason = read_error(e)
        raise CheckpointError(
            f"{key}={path} cannot be read (truncated, damaged or not a PyTorch file: {reason}); {HINT}"
        ) from e


def is_state_dict(state: Any) -> bool:
    return isinstance(state, dict) and all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()
    )


def weights_digest(state: dict[str, Tensor], record: dict[str, Any]) -> str:
    """SHA-256 over the run record and the names, dtypes, shapes and bytes of the state dict: PyTorch's zip
    reader does not check tensor data, so a flipped bit in the weights or the config would load silently."""
    digest = hashlib.sha256()
    described = {k: v for k, v in record.items() if k != "weights_sha256"}
    digest.update(json.dumps(described, sort_keys=True, default=str).encode())
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def read_error(e: Exception) -> str:
    """The informative part of what ``torch.load`` raised, in one short line."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for line in lines:  # weights_only refusals explain themselves on this line
        if line.startswith("WeightsUnpickler error:"):
            return line.removeprefix("WeightsUnpickler error:").strip().split(". ")[0][:160]
    return (lines[0][:160] if lines else "") or type(e).__name__


def stored_run(ckpt: dict[str, Any], path: str | Path, key: str = "ckpt"):
    """The :class:`~genlab.run.config.RunConfig` of a checkpoint, re-validated with genlab's schemas."""
    from genlab.config.spec import DataSpec
    from genlab.run.config import RunConfig

    record = ckpt[RECORD_KEY]
    try:
        run = RunConfig.from_plain(record.get("config"))
        stored_spec = DataSpec.from_dict(record.get("data_spec"))
    except (ConfigError, TypeError, ValueError, KeyError) as e:
        raise CheckpointError(
            f"{key}={path} stores an invalid run config ({' '.join(str(e).split())}); {HINT}"
        ) from e
    if record.get("family") != run.model_family or stored_spec != run.data:
        raise CheckpointError(f"{key}={path} has an inconsistent run record (family or data spec); {HINT}")
    return run


@dataclass
class LoadedRun:
    run: Any  # RunConfig
    model: Any  # the family's LightningModule, in eval mode
    path: Path
    global_step: int


def load_run(path: str | Path, device: str | torch.device = "cpu", key: str = "ckpt") -> LoadedRun:
    """Rebuild the model of a checkpoint (config from its run record, weights, EMA included) on ``device``."""
    from genlab.utils.resources import check_run_fits

    ckpt = read_checkpoint(path, key)
    run = stored_run(ckpt, path, key)
    if "compile" in {f.name for f in dataclasses.fields(run.model)}:
        run = dataclasses.replace(
            run, model=dataclasses.replace(run.model, compile=False)
        )  # inference: eager
    try:
        check_run_fits(run)
    except ConfigError as e:
        raise CheckpointError(f"{key}={path}: {e}") from e
    model = run.model_class(run.model, run.data, run.optimizer)
    load_weights(model, ckpt["state_dict"], path, key)
    return LoadedRun(run, model.to(device).eval(), Path(path), int(ckpt.get("global_step", 0)))


def load_weights(
    model: torch.nn.Module, state: dict[str, Tensor], path: str | Path, key: str = "ckpt"
) -> None:
    """``model.load_state_dict(state)`` with a one-line error when the weights do not fit the model."""
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, TypeError) as e:
        reason = " ".join(str(e).split())[:160]
        raise CheckpointError(
            f"{key}={path}: the weights do not fit the model its run record describes ({reason}); {HINT}"
        ) from e

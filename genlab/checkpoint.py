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

from genlab.config.schema import build_typed, to_plain
from genlab.config.spec import DataSpec
from genlab.data import DATASETS
from genlab.models import MODELS
from genlab.models.optim import OptimizerConfig
from genlab.utils.errors import CheckpointError, ConfigError

MODEL_GROUPS = ("model", "dataset", "optimizer")


@dataclass(frozen=True)
class ModelRecord:
    """The model part of a run: the family, its config, the dataset's and the optimizer's configs, and the data as
    the model sees it. Everything ``genlab sample``, ``genlab eval`` and the classifier feature net rebuild from a
    checkpoint; the run's trainer, callbacks, loggers and paths are not part of it, so a later genlab that renamed
    a callback key still samples and evaluates older checkpoints."""

    family: str
    model: Any  # the family's typed config (GANConfig, VAEConfig, ClassifierConfig)
    dataset: Any  # the dataset's typed config
    optimizer: OptimizerConfig
    data: DataSpec  # the data as the model sees it (auto keys resolved)

    @property
    def model_class(self) -> type:
        return MODELS[self.family]

    @property
    def dataset_class(self) -> type:
        return DATASETS[self.dataset.name]

    @classmethod
    def from_plain(cls, raw: dict[str, Any]) -> ModelRecord:
        """Validate the model groups of a resolved config (plain containers); other groups are not read."""
        if not isinstance(raw, dict):
            raise ConfigError("the run config must be a mapping of groups and keys")
        for group in MODEL_GROUPS:
            if not isinstance(raw.get(group), dict):
                raise ConfigError(f"config group '{group}' is missing; choose one with {group}=<name>")
        model_raw = dict(raw["model"])
        family = model_raw.pop("family", None)
        model_cls = MODELS.get_checked(family)
        model = build_typed(model_cls.config_class, model_raw, "model")
        dataset_cls = DATASETS.get_checked(raw["dataset"].get("name"))
        dataset = build_typed(dataset_cls.config_class, raw["dataset"], "dataset")
        optimizer = build_typed(OptimizerConfig, raw["optimizer"], "optimizer")
        return cls(
            family, model, dataset, optimizer, resolve_data_spec(dataset_cls, dataset, model_cls, model)
        )

    def to_plain(self) -> dict[str, Any]:
        return {
            "model": {"family": self.family, **to_plain(self.model)},
            "dataset": to_plain(self.dataset),
            "optimizer": to_plain(self.optimizer),
        }

    def with_data_dir(self, data_dir: str) -> ModelRecord:
        """The same record reading its dataset from ``data_dir`` (the current command's, not the stored one)."""
        return dataclasses.replace(self, dataset=dataclasses.replace(self.dataset, data_dir=str(data_dir)))


def resolve_data_spec(dataset_cls: type, dataset: Any, model_cls: type, model: Any) -> DataSpec:
    """``image_size: null`` -> the native size if the network can produce it, else the smallest supported size
    above it; ``value_range: null`` -> the range the model expects ([0, 1] when it has no preference)."""
    native = dataset_cls.native_spec(dataset)
    if not native.is_image:
        model_cls.check_data(model, native)
        return native
    size, value_range = native.image_size, native.value_range
    if dataset.image_size is None:
        sizes = model_cls.supported_image_sizes(model)
        if sizes is not None and size not in sizes:
            above = [s for s in sorted(sizes) if s >= size]
            if not above:
                raise ConfigError(
                    f"dataset {dataset.name} is {size}px but model.net={getattr(model, 'net', '?')} only produces "
                    f"{sorted(sizes)}; set dataset.image_size to one of them"
                )
            size = above[0]
    if dataset.value_range is None:
        value_range = model_cls.expected_value_range(model) or (0.0, 1.0)
    spec = DataSpec((native.channels, size, size), tuple(value_range), native.num_classes, native.name)
    model_cls.check_data(model, spec)
    return spec


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
        "family": run.record.family,
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


def stored_model(ckpt: dict[str, Any], path: str | Path, key: str = "ckpt") -> ModelRecord:
    """The :class:`ModelRecord` of a checkpoint, re-validated with genlab's schemas (the model part only)."""
    record = ckpt[RECORD_KEY]
    try:
        model = ModelRecord.from_plain(record.get("config"))
        stored_spec = DataSpec.from_dict(record.get("data_spec"))
    except (ConfigError, TypeError, ValueError, KeyError) as e:
        raise CheckpointError(
            f"{key}={path} stores an invalid model config ({' '.join(str(e).split())}); {HINT}"
        ) from e
    if record.get("family") != model.family or stored_spec != model.data:
        raise CheckpointError(f"{key}={path} has an inconsistent run record (family or data spec); {HINT}")
    return model


@dataclass
class LoadedRun:
    run: ModelRecord
    model: Any  # the family's LightningModule, in eval mode
    path: Path
    global_step: int


def load_run(path: str | Path, device: str | torch.device = "cpu", key: str = "ckpt") -> LoadedRun:
    """Rebuild the model of a checkpoint (config from its run record, weights, EMA included) on ``device``."""
    from genlab.utils.resources import check_run_fits

    ckpt = read_checkpoint(path, key)
    run = stored_model(ckpt, path, key)
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

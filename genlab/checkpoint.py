"""Checkpoints as untrusted input: one reader for ``genlab sample``, ``genlab eval`` and ``train ckpt_path=``.

A genlab checkpoint carries a plain-data run record under ``checkpoint["genlab"]``: the model family and
dataset names (registry keys, never import paths), the run's typed configs, the resolved data spec and the
versions that wrote it, sealed with two SHA-256 digests (:func:`seal`): one over the record and the weights
(what sampling and evaluation use), one over everything else a resume restores (optimizer, scheduler, loop
and callback states). Reading uses ``torch.load(weights_only=True)``, maps names through genlab's registries
only, and ends every failure in one :class:`~genlab.utils.errors.CheckpointError` line.

Sampling and evaluation rebuild only the :class:`ModelRecord` (model, dataset, optimizer, data spec): the
stored trainer, callbacks, loggers and paths are the run layer's concern (``genlab.run.resume``), so a later
genlab that renames a callback key still samples and evaluates older checkpoints. Data is read from the
command's own data directory, never from the one stored in the checkpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
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

RECORD_KEY = "genlab"
FORMAT = 2
WEIGHTS_DIGEST = "weights_sha256"  # the record and the weights
STATE_DIGEST = "state_sha256"  # the rest of what a resume restores (absent in checkpoints of older genlabs)
HINT = "pass a checkpoint written by `genlab train`, e.g. <run dir>/checkpoints/last.ckpt"
EARLIER = "use another checkpoint, e.g. an earlier step*.ckpt of the run"


@dataclass(frozen=True)
class ModelRecord:
    """The model part of a run: what sampling and evaluation rebuild from a checkpoint, and what a resume may
    not change. Names are registry keys; every config is validated with the schema ``genlab train`` uses."""

    model_family: str
    model: Any  # the family's typed config (GANConfig, VAEConfig, ClassifierConfig)
    dataset: Any  # the dataset's typed config
    optimizer: OptimizerConfig
    data: DataSpec  # the data as the model sees it (auto keys resolved)

    @property
    def model_class(self) -> type:
        return MODELS[self.model_family]

    @property
    def dataset_class(self) -> type:
        return DATASETS[self.dataset.name]

    @classmethod
    def from_plain(cls, raw: Mapping[str, Any]) -> ModelRecord:
        """The ``model``, ``dataset`` and ``optimizer`` groups of a resolved run config (other keys ignored)."""
        for group in ("dataset", "model", "optimizer"):
            if not isinstance(raw.get(group), dict):
                raise ConfigError(f"config group '{group}' is missing; choose one with {group}=<name>")
        model_raw = dict(raw["model"])
        family = model_raw.pop("family", None)
        model_cls = MODELS.get_checked(family)
        model = build_typed(model_cls.config_class, model_raw, "model")
        dataset_cls = DATASETS.get_checked(raw["dataset"].get("name"))
        dataset = build_typed(dataset_cls.config_class, raw["dataset"], "dataset")
        optimizer = build_typed(OptimizerConfig, raw["optimizer"], "optimizer")
        data = resolve_data_spec(dataset_cls, dataset, model_cls, model)
        return cls(family, model, dataset, optimizer, data)

    def to_plain(self) -> dict[str, Any]:
        return {
            "model": {"family": self.model_family, **to_plain(self.model)},
            "dataset": to_plain(self.dataset),
            "optimizer": to_plain(self.optimizer),
        }

    def reading_data_from(self, data_dir: str | None) -> ModelRecord:
        """This record with its dataset read from ``data_dir`` (None: the default, ``$GENLAB_DATA_DIR`` or
        ``data/``) instead of the directory it was trained from."""
        dataset = {k: v for k, v in to_plain(self.dataset).items() if k != "data_dir"}
        if data_dir is not None:
            dataset["data_dir"] = data_dir
        return dataclasses.replace(self, dataset=build_typed(type(self.dataset), dataset, "dataset"))

    def for_inference(self) -> ModelRecord:
        """Compilation off: sampling and evaluation run the networks eagerly."""
        if "compile" not in {f.name for f in dataclasses.fields(self.model)}:
            return self
        return dataclasses.replace(self, model=dataclasses.replace(self.model, compile=False))


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
        value_range = model_cls.expected_value_range(model) or native.value_range  # the dataset's default
    spec = DataSpec((native.channels, size, size), tuple(value_range), native.num_classes, native.name)
    model_cls.check_data(model, spec)
    return spec


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
    """What every checkpoint of ``run`` (a :class:`~genlab.run.config.RunConfig`) carries, unsealed."""
    return {
        "format": FORMAT,
        "family": run.model_family,
        "dataset": run.dataset.name,
        "config": run.to_plain(),
        "data_spec": run.data.to_dict(),
        "versions": versions(),
    }


def seal(checkpoint: dict[str, Any]) -> None:
    """Put the digests into the run record of a checkpoint about to be written (a dict without one is left
    as it is): computed on the dict as it goes to disk, after every hook has added its state."""
    record = checkpoint.get(RECORD_KEY)
    if not isinstance(record, dict):
        return
    described = {k: v for k, v in record.items() if k not in (WEIGHTS_DIGEST, STATE_DIGEST)}
    checkpoint[RECORD_KEY] = {
        **described,
        WEIGHTS_DIGEST: weights_digest(checkpoint["state_dict"], described),
        STATE_DIGEST: state_digest(checkpoint),
    }


def read_checkpoint(path: str | Path, key: str = "ckpt", resume: bool = False) -> dict[str, Any]:
    """The checkpoint dict at ``path``: read with ``weights_only=True``, its structure, weights checksum and
    finite weights checked; ``resume``: the checksum of the training state too (when it has one)."""
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
    if not digest_matches(record.get(WEIGHTS_DIGEST), lambda: weights_digest(state, record)):
        raise CheckpointError(
            f"{key}={path}: its weights do not match the checksum it was written with (damaged or altered); "
            f"{EARLIER}"
        )
    if (
        resume
        and STATE_DIGEST in record
        and not digest_matches(record[STATE_DIGEST], lambda: state_digest(ckpt))
    ):
        raise CheckpointError(
            f"{key}={path}: its optimizer, scheduler or loop state does not match the checksum it was written "
            f"with (damaged or altered); it still samples and evaluates, but to resume {EARLIER}"
        )
    bad = first_non_finite(state)
    if bad is not None:
        raise CheckpointError(f"{key}={path}: its weight {bad} holds NaN or inf values; {EARLIER}")
    return ckpt


def digest_matches(stored: Any, compute) -> bool:
    try:
        return stored == compute()
    except (TypeError, ValueError, RecursionError):  # a damaged record that is no longer plain data
        return False


def first_non_finite(named: Mapping[str, Any]) -> str | None:
    """The name of the first floating-point tensor in ``named`` holding NaN or inf (None: all finite)."""
    for name, value in named.items():
        if isinstance(value, Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return name
    return None


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
    described = {k: v for k, v in record.items() if k not in (WEIGHTS_DIGEST, STATE_DIGEST)}
    digest.update(json.dumps(described, sort_keys=True, default=str).encode())
    for name in sorted(state):
        digest.update(f"{name}|".encode())
        update_digest(digest, state[name])
    return digest.hexdigest()


def state_digest(checkpoint: dict[str, Any]) -> str:
    """SHA-256 over everything in a checkpoint but its weights and run record: the optimizer, scheduler, loop,
    callback and precision states Lightning restores on resume."""
    digest = hashlib.sha256()
    update_digest(digest, {k: v for k, v in checkpoint.items() if k not in (RECORD_KEY, "state_dict")})
    return digest.hexdigest()


def update_digest(digest: Any, value: Any) -> None:
    """Feed nested plain data and tensors into ``digest``, each item tagged with its kind, so that the dict
    written and the dict ``torch.load`` hands back (tuples as lists, dicts as OrderedDicts) hash the same."""
    if isinstance(value, Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, Mapping):
        digest.update(f"{{{len(value)}|".encode())
        for k in sorted(value, key=repr):
            update_digest(digest, k)
            update_digest(digest, value[k])
    elif isinstance(value, list | tuple):
        digest.update(f"[{len(value)}|".encode())
        for item in value:
            update_digest(digest, item)
    else:
        text = repr(value)
        digest.update(f"{type(value).__name__}:{len(text)}|{text}".encode())


def read_error(e: Exception) -> str:
    """The informative part of what ``torch.load`` raised, in one short line."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for line in lines:  # weights_only refusals explain themselves on this line
        if line.startswith("WeightsUnpickler error:"):
            return line.removeprefix("WeightsUnpickler error:").strip().split(". ")[0][:160]
    return (lines[0][:160] if lines else "") or type(e).__name__


def stored_record(ckpt: dict[str, Any], path: str | Path, key: str = "ckpt") -> ModelRecord:
    """The :class:`ModelRecord` of a checkpoint read by :func:`read_checkpoint`, validated with genlab's
    schemas; the stored trainer, callbacks, loggers and paths are not looked at."""
    record = ckpt[RECORD_KEY]
    config = record.get("config")
    try:
        if not isinstance(config, dict):
            raise ConfigError("the run config is not a mapping of groups and keys")
        model = ModelRecord.from_plain(config)
        stored_spec = DataSpec.from_dict(record.get("data_spec"))
    except (ConfigError, TypeError, ValueError, KeyError) as e:
        raise CheckpointError(
            f"{key}={path} stores an invalid run config ({' '.join(str(e).split())}); {HINT}"
        ) from e
    if record.get("family") != model.model_family or stored_spec != model.data:
        raise CheckpointError(f"{key}={path} has an inconsistent run record (family or data spec); {HINT}")
    return model


@dataclass
class LoadedRun:
    record: ModelRecord  # its dataset reads from the command's data directory
    model: Any  # the family's LightningModule, in eval mode
    path: Path
    global_step: int


def load_run(
    path: str | Path, device: str | torch.device = "cpu", key: str = "ckpt", data_dir: str | None = None
) -> LoadedRun:
    """Rebuild the model of a checkpoint (config from its run record, weights, EMA included) on ``device``;
    its dataset, if read at all, comes from ``data_dir`` (None: the default data directory)."""
    from genlab.utils.resources import check_run_fits

    ckpt = read_checkpoint(path, key)
    record = stored_record(ckpt, path, key).for_inference().reading_data_from(data_dir)
    try:
        check_run_fits(record)
    except ConfigError as e:
        raise CheckpointError(f"{key}={path}: {e}") from e
    model = record.model_class(record.model, record.data, record.optimizer)
    load_weights(model, ckpt["state_dict"], path, key)
    return LoadedRun(record, model.to(device).eval(), Path(path), int(ckpt.get("global_step", 0)))


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

"""One resolved run: the composed config turned, once, into frozen typed configs plus the resolved data spec.

:func:`resolve_run` is the single validation step of ``genlab train``: every group (dataset, model,
optimizer, trainer, callbacks, logger, paths) and every top-level key is checked against its typed schema,
names are looked up in genlab's registries, and the auto keys (``dataset.image_size``/``value_range: null``)
are resolved into the :class:`~genlab.config.spec.DataSpec`. Nothing edits the Hydra config; constructors take
the typed objects. The same step re-validates the run record stored in a checkpoint
(:meth:`RunConfig.from_record`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from genlab.config.schema import build_typed, to_plain
from genlab.config.spec import DataSpec
from genlab.data import DATASETS
from genlab.data.datamodule import per_process_batch
from genlab.models import MODELS
from genlab.models.optim import OptimizerConfig
from genlab.run.sections import PathsConfig, RunSettings, TrainerConfig, strategy_for
from genlab.utils.errors import ConfigError

GROUPS = ("dataset", "model", "optimizer", "trainer", "callbacks", "logger", "paths")
SETTINGS = tuple(f.name for f in fields(RunSettings))


@dataclass(frozen=True)
class RunConfig:
    settings: RunSettings
    model_family: str
    model: Any  # the family's typed config (GANConfig, VAEConfig, ClassifierConfig)
    dataset: Any  # the dataset's typed config
    data: DataSpec  # the data as the model sees it (auto keys resolved)
    optimizer: OptimizerConfig
    trainer: TrainerConfig
    callbacks: dict[str, Any]  # registry name -> typed callback config
    loggers: dict[str, Any]  # registry name -> typed logger config
    paths: PathsConfig

    @property
    def model_class(self) -> type:
        return MODELS[self.model_family]

    @property
    def dataset_class(self) -> type:
        return DATASETS[self.dataset.name]

    @property
    def seed(self) -> int:
        return self.settings.seed

    # ---- plain data in, plain data out -------------------------------------------------------
    @classmethod
    def from_plain(cls, raw: dict[str, Any]) -> RunConfig:
        """Validate a resolved config given as plain containers (a composed config, or a stored record)."""
        if not isinstance(raw, dict):
            raise ConfigError("the run config must be a mapping of groups and keys")
        unknown = sorted(k for k in raw if k not in GROUPS and k not in SETTINGS)
        if unknown:
            allowed = ", ".join((*GROUPS, *SETTINGS))
            raise ConfigError(
                f"{unknown[0]} is not a known key of a genlab run; allowed top-level keys: {allowed}"
            )
        for group in ("dataset", "model", "optimizer", "trainer"):
            if not isinstance(raw.get(group), dict):
                raise ConfigError(f"config group '{group}' is missing; choose one with {group}=<name>")
        settings = build_typed(RunSettings, {k: raw[k] for k in SETTINGS if k in raw}, "")
        model_raw = dict(raw["model"])
        family = model_raw.pop("family", None)
        model_cls = MODELS.get_checked(family)
        model = build_typed(model_cls.config_class, model_raw, "model")
        dataset_cls = DATASETS.get_checked(raw["dataset"].get("name"))
        dataset = build_typed(dataset_cls.config_class, raw["dataset"], "dataset")
        optimizer = build_typed(OptimizerConfig, raw["optimizer"], "optimizer")
        trainer = build_typed(TrainerConfig, raw["trainer"], "trainer")
        paths = build_typed(PathsConfig, raw.get("paths"), "paths")
        callbacks = build_components("callbacks", raw.get("callbacks"))
        loggers = build_components("logger", raw.get("logger"))
        data = resolve_data_spec(dataset_cls, dataset, model_cls, model)
        run = cls(settings, family, model, dataset, data, optimizer, trainer, callbacks, loggers, paths)
        check_run(run)
        return run

    def to_plain(self) -> dict[str, Any]:
        """The same shape :meth:`from_plain` reads: groups of plain values, top-level keys."""
        return {
            **to_plain(self.settings),
            "model": {"family": self.model_family, **to_plain(self.model)},
            "dataset": to_plain(self.dataset),
            "optimizer": to_plain(self.optimizer),
            "trainer": to_plain(self.trainer),
            "callbacks": {name: to_plain(c) for name, c in self.callbacks.items()},
            "logger": {name: to_plain(c) for name, c in self.loggers.items()},
            "paths": to_plain(self.paths),
        }


def build_components(group: str, raw: Any) -> dict[str, Any]:
    """``callbacks``/``logger``: a mapping of registry names to their keys (null entries are switched off)."""
    from genlab.run.callbacks import CALLBACKS
    from genlab.run.loggers import LOGGERS

    registry = CALLBACKS if group == "callbacks" else LOGGERS
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{group} must be a mapping of names to settings; allowed names: {', '.join(registry)}"
        )
    out = {}
    for name, keys in raw.items():
        if keys is None:
            continue
        if name not in registry:
            raise ConfigError(
                f"{group}.{name} is not a known {'callback' if group == 'callbacks' else 'logger'}; "
                f"allowed: {', '.join(registry)} (genlab builds only its own)"
            )
        config_class = registry[name] if group == "logger" else registry[name].config_class
        out[name] = build_typed(config_class, keys, f"{group}.{name}")
    return out


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


def check_run(run: RunConfig) -> None:
    """Checks across groups, before anything is built or any process spawns."""
    world = run.trainer.world_size()
    if world:
        per_process_batch(run.dataset.batch_size, world)
    strategy_for(run.trainer, run.model_class.ddp_unused_parameters)
    run.model_class.check_training(run.model, run.dataset.batch_size // (world or 1), run.trainer)
    sizes = run.dataset_class.split_sizes(run.dataset)
    if sizes is not None and run.dataset.batch_size > sizes["train"]:
        raise ConfigError(
            f"dataset.batch_size={run.dataset.batch_size} is larger than the training split "
            f"({sizes['train']} samples: no full batch); lower dataset.batch_size or add data"
        )
    metric = run.settings.optimized_metric
    if metric is not None and not metric.strip():
        raise ConfigError("optimized_metric is empty; name a logged metric (e.g. val/neg_elbo) or null")


def check_machine(run: RunConfig) -> None:
    """Checks of this machine for a run about to train on it (not made on a checkpoint's stored record)."""
    check_data_dir(run)
    check_accelerator(run.trainer)


def check_accelerator(trainer: TrainerConfig) -> None:
    import torch

    if trainer.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={trainer.accelerator} but no CUDA GPU is available; use trainer=cpu "
            "(or trainer.accelerator=auto)"
        )


def check_data_dir(run: RunConfig) -> None:
    """A data directory that cannot serve the run: missing without download, or unreadable."""
    data_dir = Path(run.dataset.data_dir)
    if getattr(run.dataset, "download", True) is False and not data_dir.is_dir():
        raise ConfigError(
            f"paths.data_dir={str(data_dir)!r} does not exist and dataset.download=false; point paths.data_dir "
            "(or GENLAB_DATA_DIR) at your data or set dataset.download=true"
        )
    if data_dir.exists() and not (data_dir.is_dir() and os.access(data_dir, os.R_OK | os.X_OK)):
        raise ConfigError(
            f"paths.data_dir={str(data_dir)!r} is not a readable directory; fix its permissions or point "
            "paths.data_dir (or GENLAB_DATA_DIR) elsewhere"
        )


def resolve_run(cfg) -> RunConfig:
    """The composed Hydra config of ``genlab train`` -> the validated :class:`RunConfig` (built once)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        raw = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None)
        first = str(e).strip().splitlines()[0]
        raise ConfigError(f"{key}: {first}" if key else first) from e
    run = RunConfig.from_plain(raw)
    check_machine(run)
    return run

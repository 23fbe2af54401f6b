"""One resolved run: the composed config turned, once, into frozen typed configs plus the resolved data spec.

:func:`resolve_run` is the single validation step of ``genlab train``: every group (dataset, model,
optimizer, trainer, callbacks, logger, paths) and every top-level key is checked against its typed schema,
names are looked up in genlab's registries, and the auto keys (``dataset.image_size``/``value_range: null``)
are resolved into the :class:`~genlab.config.spec.DataSpec`. Nothing edits the Hydra config; constructors take
the typed objects. The model part (:class:`~genlab.checkpoint.ModelRecord`) is what checkpoints are sampled,
evaluated and resumed by; the run adds how it trains (trainer, callbacks, loggers, paths, top-level keys).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from genlab.checkpoint import ModelRecord
from genlab.config.schema import build_typed, plain_config, to_plain
from genlab.config.spec import DataSpec
from genlab.data.datamodule import per_process_batch
from genlab.models.optim import OptimizerConfig
from genlab.run.sections import PathsConfig, RunSettings, TrainerConfig, strategy_for
from genlab.utils.errors import ConfigError

GROUPS = ("dataset", "model", "optimizer", "trainer", "callbacks", "logger", "paths")
SETTINGS = tuple(f.name for f in fields(RunSettings))


@dataclass(frozen=True)
class RunConfig:
    settings: RunSettings
    record: ModelRecord  # model family, model, dataset and optimizer configs, data spec
    trainer: TrainerConfig
    callbacks: dict[str, Any]  # registry name -> typed callback config
    loggers: dict[str, Any]  # registry name -> typed logger config
    paths: PathsConfig

    # ---- the model part, by the names the rest of the run uses ----------------------------------
    @property
    def model_family(self) -> str:
        return self.record.model_family

    @property
    def model(self) -> Any:
        return self.record.model

    @property
    def dataset(self) -> Any:
        return self.record.dataset

    @property
    def data(self) -> DataSpec:
        return self.record.data

    @property
    def optimizer(self) -> OptimizerConfig:
        return self.record.optimizer

    @property
    def model_class(self) -> type:
        return self.record.model_class

    @property
    def dataset_class(self) -> type:
        return self.record.dataset_class

    @property
    def seed(self) -> int:
        return self.settings.seed

    # ---- plain data in, plain data out -------------------------------------------------------
    @classmethod
    def from_plain(cls, raw: dict[str, Any], record: ModelRecord | None = None) -> RunConfig:
        """Validate a resolved config given as plain containers (a composed config, or a stored record);
        ``record``: its model part, already validated."""
        if not isinstance(raw, dict):
            raise ConfigError("the run config must be a mapping of groups and keys")
        unknown = sorted(k for k in raw if k not in GROUPS and k not in SETTINGS)
        if unknown:
            allowed = ", ".join((*GROUPS, *SETTINGS))
            raise ConfigError(
                f"{unknown[0]} is not a known key of a genlab run; allowed top-level keys: {allowed}"
            )
        settings = build_typed(RunSettings, {k: raw[k] for k in SETTINGS if k in raw}, "")
        record = record or ModelRecord.from_plain(raw)
        if not isinstance(raw.get("trainer"), dict):
            raise ConfigError("config group 'trainer' is missing; choose one with trainer=<name>")
        trainer = build_typed(TrainerConfig, raw["trainer"], "trainer")
        paths = build_typed(PathsConfig, raw.get("paths"), "paths")
        callbacks = build_components("callbacks", raw.get("callbacks"))
        loggers = build_components("logger", raw.get("logger"))
        run = cls(settings, record, trainer, callbacks, loggers, paths)
        check_run(run)
        return run

    def to_plain(self) -> dict[str, Any]:
        """The same shape :meth:`from_plain` reads: groups of plain values, top-level keys."""
        return {
            **to_plain(self.settings),
            **self.record.to_plain(),
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


def check_run(run: RunConfig) -> None:
    """Checks across groups, before anything is built or any process spawns."""
    world = run.trainer.world_size()
    batch = per_process_batch(run.dataset.batch_size, world) if world else run.dataset.batch_size
    strategy_for(
        run.trainer, run.model_class.ddp_unused_parameters
    )  # refuses a strategy the family cannot use
    run.model_class.check_training(run.model, batch, run.trainer)
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
    run = RunConfig.from_plain(plain_config(cfg))
    check_machine(run)
    return run

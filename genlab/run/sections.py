"""Typed configs of the run-level groups: ``trainer``, ``paths`` and the top-level keys of ``train.yaml``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytorch_lightning as pl

from genlab.config.derived import check_annotations, signature_fields
from genlab.config.schema import check_at_least, check_choice, check_seed, require
from genlab.utils.errors import ConfigError

# Trainer arguments genlab passes itself, and where a user sets what they do
OWNED = {
    "logger": "the logger group (logger=tensorboard|csv|many|none)",
    "callbacks": "the callbacks group (callbacks.<name>.<key>)",
    "plugins": "genlab's own checkpoint I/O",
    "default_root_dir": "paths.run_dir",
}
# genlab's defaults where they differ from Lightning's: runs are measured in steps, validated every N steps
DEFAULTS = {
    "devices": 1,
    "precision": "32-true",
    "max_steps": 3000,
    "max_epochs": -1,
    "val_check_interval": 500,
    "check_val_every_n_epoch": None,
    "limit_val_batches": 10,
    "log_every_n_steps": 50,
    "num_sanity_val_steps": 0,
    "deterministic": False,
    "benchmark": False,
    "enable_progress_bar": True,
    "enable_checkpointing": True,
    "enable_model_summary": True,
}


def strategies() -> tuple[str, ...]:
    from pytorch_lightning.strategies import StrategyRegistry

    return ("auto", *sorted(StrategyRegistry.available_strategies()))


def accelerators() -> tuple[str, ...]:
    from pytorch_lightning.accelerators import AcceleratorRegistry

    return ("auto", "gpu", *sorted(AcceleratorRegistry.available_accelerators()))


class TrainerChecks:
    """genlab's checks on top of the argument types Lightning declares."""

    def __post_init__(self) -> None:
        check_annotations(self, "trainer")
        check_choice("trainer.accelerator", self.accelerator, accelerators())
        check_choice("trainer.strategy", self.strategy, strategies())
        devices = self.devices
        require(
            devices == "auto"
            or (
                isinstance(devices, int) and not isinstance(devices, bool) and (devices >= 1 or devices == -1)
            )
            or (
                isinstance(devices, list | tuple)
                and devices
                and all(isinstance(d, int) and d >= 0 for d in devices)
            ),
            f"trainer.devices={devices!r} must be a count >= 1, -1 (all), auto, or a list of device indices",
        )
        check_at_least("trainer.num_nodes", self.num_nodes, 1, 2)
        check_at_least("trainer.max_steps", self.max_steps, 1, 3000)
        require(
            self.max_epochs in (None, -1) or self.max_epochs >= 1,
            f"trainer.max_epochs={self.max_epochs} must be >= 1, or -1 (no limit: max_steps decides)",
        )
        vci = self.val_check_interval
        require(
            not isinstance(vci, int | float)
            or (isinstance(vci, int) and not isinstance(vci, bool) and vci >= 1)
            or (isinstance(vci, float) and 0 < vci <= 1),
            f"trainer.val_check_interval={vci!r} must be a whole number of steps >= 1 or a fraction of an "
            "epoch in (0, 1] (e.g. trainer.val_check_interval=500)",
        )
        if self.check_val_every_n_epoch is not None:
            check_at_least("trainer.check_val_every_n_epoch", self.check_val_every_n_epoch, 1, 1)
        for key in ("limit_train_batches", "limit_val_batches", "overfit_batches"):
            value = getattr(self, key)
            require(
                value is None
                or (isinstance(value, int) and value >= 0)
                or (isinstance(value, float) and 0 <= value <= 1),
                f"trainer.{key}={value!r} must be a batch count >= 0 or a fraction in [0, 1]",
            )
        check_at_least("trainer.log_every_n_steps", self.log_every_n_steps, 1, 50)
        check_at_least("trainer.num_sanity_val_steps", self.num_sanity_val_steps, -1, 0)
        if self.gradient_clip_val is not None:
            check_at_least("trainer.gradient_clip_val", self.gradient_clip_val, 0, 1.0)
        check_at_least("trainer.accumulate_grad_batches", self.accumulate_grad_batches, 1, 1)

    def world_size(self) -> int | None:
        """Processes that share the global batch, when known from the config alone."""
        devices = self.devices
        if isinstance(devices, list | tuple):
            count = len(devices)
        elif isinstance(devices, int) and devices >= 1:
            count = devices
        else:
            return None
        return count * self.num_nodes


# every pytorch_lightning.Trainer argument but those genlab passes itself, typed from Lightning's annotations
TrainerConfig = dataclasses.make_dataclass(
    "TrainerConfig",
    signature_fields(pl.Trainer, exclude=OWNED, defaults=DEFAULTS),
    bases=(TrainerChecks,),
    frozen=True,
    namespace={
        "__module__": __name__,
        "__doc__": "Every ``pytorch_lightning.Trainer`` argument (configs/trainer).",
    },
)


DDP_LAUNCHERS = ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook")
UNUSED_FALSE, UNUSED_TRUE = "_find_unused_parameters_false", "_find_unused_parameters_true"


def strategy_for(trainer: TrainerConfig, unused_parameters: bool, devices: int | None = None) -> str:
    """The strategy name that works for a family whose steps leave parameters unused: plain DDP (named, or
    chosen by ``auto`` for several processes) becomes its ``find_unused_parameters_true`` variant. ``devices``:
    the device count where the config leaves it to the machine (``devices=-1``/``auto``)."""
    strategy = trainer.strategy
    if not unused_parameters:
        return strategy
    if strategy.endswith(UNUSED_FALSE):
        launcher = strategy.removesuffix(UNUSED_FALSE)
        raise ConfigError(
            f"trainer.strategy={strategy} cannot train this model: its steps leave parameters without gradients "
            f"(the GAN updates D and G in turn); use trainer.strategy={launcher}{UNUSED_TRUE} or {launcher}"
        )
    processes = trainer.world_size() or (devices or 1) * trainer.num_nodes
    if strategy == "auto" and processes > 1:
        strategy = "ddp"
    return f"{strategy}{UNUSED_TRUE}" if strategy in DDP_LAUNCHERS else strategy


def store_trainer_schema() -> None:
    """Make ``trainer/lightning`` (every Trainer argument with its default) the base of the trainer group, so
    that ``trainer.<any argument>=value`` works on the command line without ``+``."""
    from hydra.core.config_store import ConfigStore

    defaults = {
        f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
        for f in dataclasses.fields(TrainerConfig)
    }
    ConfigStore.instance().store(group="trainer", name="lightning", node=defaults)


@dataclass(frozen=True)
class PathsConfig:
    """Every path genlab reads or writes (``configs/paths/default.yaml``)."""

    # datasets and their caches ($GENLAB_DATA_DIR, default data/)
    data_dir: str = "data"
    # root of every run directory (runs/, multirun/)
    output_dir: str = "outputs"
    # this run's directory (Hydra's output dir)
    run_dir: str = "outputs/runs/run"

    def __post_init__(self) -> None:
        for key in ("data_dir", "output_dir", "run_dir"):
            value = getattr(self, key)
            require(bool(str(value).strip()), f"paths.{key} is empty; set it to a directory")


@dataclass(frozen=True)
class RunSettings:
    """The top-level keys of ``configs/train.yaml``."""

    task: str = "train"
    # seeds torch, numpy and python (and the dataset's sampling)
    seed: int = 42
    # CPU threads for torch (null: the cores free when the run starts)
    threads: int | None = None
    # the metric train() returns (and a sweeper optimizes)
    optimized_metric: str | None = None
    # a run directory to continue in place from its last.ckpt
    resume: str | None = None
    # a checkpoint to continue from (an older one rewinds the run)
    ckpt_path: str | None = None

    def __post_init__(self) -> None:
        check_seed("seed", self.seed, 42)
        if self.threads is not None:
            check_at_least("threads", self.threads, 1, 1)

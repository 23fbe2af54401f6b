"""Typed configs of the run-level groups: ``trainer``, ``paths`` and the top-level keys of ``train.yaml``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genlab.config.schema import check_at_least, check_choice, check_seed, require

PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")


def strategies() -> tuple[str, ...]:
    from pytorch_lightning.strategies import StrategyRegistry

    return ("auto", *sorted(StrategyRegistry.available_strategies()))


@dataclass(frozen=True)
class TrainerConfig:
    """The ``pytorch_lightning.Trainer`` arguments genlab exposes (``configs/trainer/*.yaml``)."""

    # auto | cpu | gpu | cuda | mps
    accelerator: str = "auto"
    # a count (-1: all), "auto", or a list of device indices
    devices: Any = 1
    # auto, ddp, ddp_spawn, ... (Lightning's strategy names)
    strategy: str = "auto"
    # machines taking part (DDP)
    num_nodes: int = 1
    # 32-true | 16-mixed | bf16-mixed | 16-true | bf16-true | 64-true
    precision: str = "32-true"
    # training iterations (one generator step for GANs)
    max_steps: int = 3000
    # stop after this many epochs (-1: no limit, max_steps decides)
    max_epochs: int = -1
    # validate (and log image grids) every N training iterations, or a fraction of an epoch
    val_check_interval: Any = 500
    # validate every N epochs instead (null: val_check_interval decides)
    check_val_every_n_epoch: int | None = None
    # validation batches per round (a count, or a fraction of the split)
    limit_val_batches: Any = 10
    # scalars to the loggers every N training iterations
    log_every_n_steps: int = 50
    # validation batches run before training starts (0: none)
    num_sanity_val_steps: int = 0
    # deterministic torch algorithms (slower; reproducible on GPU)
    deterministic: bool = False
    # cudnn.benchmark: pick the fastest convolution algorithms (GPU)
    benchmark: bool = False
    # the progress bar on a terminal (progress lines otherwise)
    enable_progress_bar: bool = True
    # write checkpoints (callbacks.model_checkpoint)
    enable_checkpointing: bool = True
    # the model summary at the start
    enable_model_summary: bool = True
    # synchronize BatchNorm statistics across DDP processes
    sync_batchnorm: bool = False
    # clip gradients to this norm (null: off; GANs: model.grad_clip)
    gradient_clip_val: float | None = None
    # accumulate gradients over N batches per optimizer step
    accumulate_grad_batches: int = 1

    def __post_init__(self) -> None:
        check_choice("trainer.accelerator", self.accelerator, ACCELERATORS)
        check_choice("trainer.strategy", self.strategy, strategies())
        check_choice("trainer.precision", self.precision, PRECISIONS)
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
            self.max_epochs == -1 or self.max_epochs >= 1,
            f"trainer.max_epochs={self.max_epochs} must be >= 1, or -1 (no limit: max_steps decides)",
        )
        vci = self.val_check_interval
        require(
            (isinstance(vci, int) and not isinstance(vci, bool) and vci >= 1)
            or (isinstance(vci, float) and 0 < vci <= 1),
            f"trainer.val_check_interval={vci!r} must be a whole number of steps >= 1 or a fraction of an "
            "epoch in (0, 1] (e.g. trainer.val_check_interval=500)",
        )
        if self.check_val_every_n_epoch is not None:
            check_at_least("trainer.check_val_every_n_epoch", self.check_val_every_n_epoch, 1, 1)
        lvb = self.limit_val_batches
        require(
            (isinstance(lvb, int) and not isinstance(lvb, bool) and lvb >= 0)
            or (isinstance(lvb, float) and 0 <= lvb <= 1),
            f"trainer.limit_val_batches={lvb!r} must be a batch count >= 0 or a fraction in [0, 1]",
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

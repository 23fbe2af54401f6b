"""Progress: a bar with the key losses on interactive runs; in sweeps and logs, timed lines with rate and ETA."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from pytorch_lightning.callbacks import TQDMProgressBar

from genlab.config.schema import check_at_least, check_positive
from genlab.utils.hydra_context import in_sweep, job_tag
from genlab.utils.progress import Progress, duration

log = logging.getLogger("genlab")


@dataclass(frozen=True)
class ProgressConfig:
    """``callbacks.progress``."""

    # terminal bar refresh, in steps
    refresh_rate: int = 20
    # without a terminal (logs, sweeps): the first line after this many steps (shows the rate early) ...
    first_line_step: int = 10
    # ... then one line every this many seconds
    line_every_s: float = 30.0

    def __post_init__(self) -> None:
        check_at_least("callbacks.progress.refresh_rate", self.refresh_rate, 1, 20)
        check_at_least("callbacks.progress.first_line_step", self.first_line_step, 1, 10)
        check_positive("callbacks.progress.line_every_s", self.line_every_s, 30)


class ProgressBar(TQDMProgressBar):
    """A terminal gets Lightning's bar; logs and sweeps get timed lines (with the job id in sweeps)."""

    config_class = ProgressConfig

    def __init__(self, config: ProgressConfig, clock: Callable[[], float] = time.monotonic) -> None:
        quiet = in_sweep() or not sys.stderr.isatty()
        super().__init__(refresh_rate=0 if quiet else config.refresh_rate)
        self.config, self.clock = config, clock
        self.steps: Progress | None = None
        self.batches: Progress | None = None

    def get_metrics(self, trainer, pl_module):
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics

    def lines_on(self, trainer) -> bool:
        return self.is_disabled and trainer.is_global_zero

    def emitter(self, trainer):
        return (lambda text: log.info("%s%s", job_tag(), text)) if self.lines_on(trainer) else None

    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)
        every = self.config.line_every_s
        self.steps = Progress(
            self.emitter(trainer),
            "training",
            trainer.max_steps if trainer.max_steps > 0 else None,
            "steps",
            clock=self.clock,
            every=every,
            first=every,
            first_count=self.config.first_line_step,
            done=trainer.global_step,
            final=True,
            heartbeat=False,  # a line from each step carries that step's losses
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self.steps is not None:
            self.steps.reach(trainer.global_step, lambda: self.losses(trainer, pl_module))

    def losses(self, trainer, pl_module) -> str:
        metrics = self.get_metrics(trainer, pl_module).items()
        return ", ".join(f"{k}={v:.4g}" for k, v in metrics if isinstance(v, float))

    def on_validation_start(self, trainer, pl_module) -> None:
        super().on_validation_start(trainer, pl_module)
        emit = None if trainer.sanity_checking else self.emitter(trainer)
        total = int(sum(trainer.num_val_batches)) if trainer.num_val_batches else None
        every = self.config.line_every_s
        self.batches = Progress(
            emit, "validation", total, "batches", clock=self.clock, every=every, first=every
        )
        if emit is not None and trainer.state.fn == "validate":
            emit(f"final validation at step {trainer.global_step} ...")

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        super().on_validation_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)
        if self.batches is not None:
            self.batches.update()

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        batches, self.batches = self.batches, None
        if batches is None:
            return
        batches.close()
        if batches.emit is not None:
            batches.emit(f"validation at step {trainer.global_step} done in {duration(batches.elapsed())}")

    def on_exception(self, trainer, pl_module, exception) -> None:
        super().on_exception(trainer, pl_module, exception)
        if self.batches is not None:
            self.batches.close()
            self.batches = None

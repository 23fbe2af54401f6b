"""Progress: a bar with the key losses on interactive runs; in sweeps and logs, timed lines with rate and ETA."""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass

from pytorch_lightning.callbacks import TQDMProgressBar

from genlab.config.schema import check_at_least, check_positive
from genlab.utils.hydra_context import in_sweep, job_tag

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


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ProgressLines:
    """When to print a progress line, and what it says: count, rate, time left (no terminal needed).

    The first line comes after ``first_line_at`` units (so the rate shows early), then one every
    ``line_every_s`` seconds; ``first_line_at=None`` waits ``line_every_s`` for the first line too.
    """

    def __init__(
        self, first_line_at: int | None, line_every_s: float, unit: str = "steps", clock=time.monotonic
    ) -> None:
        self.first_line_at = first_line_at
        self.line_every_s = line_every_s
        self.unit = unit
        self.clock = clock
        self.start(0)

    def start(self, count: int) -> None:
        self.start_count, self.start_time, self.printed_first = count, self.clock(), False
        self.last_time = self.start_time

    def due(self, count: int, total: int) -> bool:
        if count >= total > 0:
            return True
        if not self.printed_first and self.first_line_at is not None:
            return count - self.start_count >= self.first_line_at
        return self.clock() - self.last_time >= self.line_every_s

    def line(self, count: int, total: int) -> str:
        now = self.clock()
        self.printed_first, self.last_time = True, now
        elapsed = now - self.start_time
        rate = (count - self.start_count) / elapsed if elapsed > 0 else 0.0
        text = f"{count}/{total}" if total > 0 else f"{count}"
        if rate > 0:
            text += f" | {rate:.3g} {self.unit}/s | {duration(elapsed)} elapsed"
            if total > count:
                text += f", {duration((total - count) / rate)} left"
        return text


class ProgressBar(TQDMProgressBar):
    """A terminal gets Lightning's bar; logs and sweeps get timed lines (with the job id in sweeps)."""

    config_class = ProgressConfig

    def __init__(self, config: ProgressConfig) -> None:
        quiet = in_sweep() or not sys.stderr.isatty()
        super().__init__(refresh_rate=0 if quiet else config.refresh_rate)
        self.steps = ProgressLines(config.first_line_step, config.line_every_s, "steps")
        self.batches = ProgressLines(None, config.line_every_s, "batches")

    def get_metrics(self, trainer, pl_module):
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics

    def lines_on(self, trainer) -> bool:
        return self.is_disabled and trainer.is_global_zero

    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)
        self.steps.start(trainer.global_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self.lines_on(trainer) and self.steps.due(trainer.global_step, trainer.max_steps):
            losses = self.get_metrics(trainer, pl_module).items()
            shown = ", ".join(f"{k}={v:.4g}" for k, v in losses if isinstance(v, float))
            line = "step " + self.steps.line(trainer.global_step, trainer.max_steps)
            log.info("%s%s%s", job_tag(), line, f" | {shown}" if shown else "")

    def on_validation_start(self, trainer, pl_module) -> None:
        super().on_validation_start(trainer, pl_module)
        self.batches.start(0)
        if self.lines_on(trainer) and trainer.state.fn == "validate":
            log.info("%sfinal validation at step %d ...", job_tag(), trainer.global_step)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        super().on_validation_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)
        if not self.lines_on(trainer) or trainer.sanity_checking:
            return
        total = int(sum(trainer.num_val_batches)) if trainer.num_val_batches else 0
        if batch_idx + 1 < total and self.batches.due(batch_idx + 1, total):
            log.info("%svalidation batch %s", job_tag(), self.batches.line(batch_idx + 1, total))

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        if self.lines_on(trainer) and not trainer.sanity_checking:
            took = self.batches.clock() - self.batches.start_time
            log.info("%svalidation at step %d done in %s", job_tag(), trainer.global_step, duration(took))

"""Progress: a bar with the key losses on interactive runs; in sweeps and logs, a line every 10% instead."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

from pytorch_lightning.callbacks import TQDMProgressBar

from genlab.config.schema import check_at_least
from genlab.hydra_context import in_sweep

log = logging.getLogger("genlab")


@dataclass(frozen=True)
class ProgressConfig:
    """``callbacks.progress``."""

    # terminal bar refresh, in steps
    refresh_rate: int = 20
    # without a terminal (logs, sweeps): this many progress lines over the run
    log_lines: int = 10

    def __post_init__(self) -> None:
        check_at_least("callbacks.progress.refresh_rate", self.refresh_rate, 1, 20)
        check_at_least("callbacks.progress.log_lines", self.log_lines, 1, 10)


class ProgressBar(TQDMProgressBar):
    config_class = ProgressConfig

    def __init__(self, config: ProgressConfig) -> None:
        quiet = in_sweep() or not sys.stderr.isatty()
        super().__init__(refresh_rate=0 if quiet else config.refresh_rate)
        self.log_lines = config.log_lines

    def get_metrics(self, trainer, pl_module):
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        every = max(1, trainer.max_steps // self.log_lines) if trainer.max_steps > 0 else 0
        if self.is_disabled and every and trainer.global_step % every == 0 and trainer.is_global_zero:
            shown = ", ".join(
                f"{k}={v:.4g}"
                for k, v in self.get_metrics(trainer, pl_module).items()
                if isinstance(v, float)
            )
            log.info("step %d/%d %s", trainer.global_step, trainer.max_steps, shown)

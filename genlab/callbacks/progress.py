"""Progress: a bar with the key losses on interactive runs; in sweeps and logs, a line every 10% instead."""

from __future__ import annotations

import logging
import sys

from pytorch_lightning.callbacks import TQDMProgressBar

from genlab.cli import in_sweep

log = logging.getLogger("genlab")


class ProgressBar(TQDMProgressBar):
    def __init__(self, refresh_rate: int = 20, log_lines: int = 10) -> None:
        quiet = in_sweep() or not sys.stderr.isatty()
        super().__init__(refresh_rate=0 if quiet else refresh_rate)
        self.log_lines = log_lines

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

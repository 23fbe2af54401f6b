"""Progress bar with the key losses on interactive runs; silent in sweeps and non-interactive output."""

from __future__ import annotations

import sys

from pytorch_lightning.callbacks import TQDMProgressBar

from genlab.cli import in_sweep


class ProgressBar(TQDMProgressBar):
    def __init__(self, refresh_rate: int = 20) -> None:
        quiet = in_sweep() or not sys.stderr.isatty()
        super().__init__(refresh_rate=0 if quiet else refresh_rate)

    def get_metrics(self, trainer, pl_module):
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics

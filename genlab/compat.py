"""The private details of Lightning and PyTorch that genlab depends on, in one place (tests/test_compat.py
fails when one of them changes)."""

from __future__ import annotations

from typing import Any

# The file name Lightning's multiprocessing launcher (DDP spawn) gives the model weights that rank 0 passes
# back to the main process; they are read back through the strategy's CheckpointIO, and hold no run record.
SPAWN_RESULTS_NAME = ".temp.ckpt"


def set_last_lr(scheduler: Any, lrs: list[float]) -> None:
    """What ``scheduler.get_last_lr()`` reports (and Lightning's LearningRateMonitor logs) until its next step."""
    scheduler._last_lr = list(lrs)

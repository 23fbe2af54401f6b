"""Lightning's ModelCheckpoint with two genlab rules.

* ``last.ckpt`` always holds the final state: Lightning saves only at intervals, epoch ends and validation
  ends, so a run whose ``max_steps`` is not a multiple of ``every_n_train_steps`` would otherwise end with
  a stale ``last.ckpt``.
* With a ``monitor`` (best-by-metric checkpoints), checkpoints are ranked when validation ends, with that
  validation's metrics: a save on ``every_n_train_steps`` runs before the step's validation and would
  score the checkpoint with the previous round's value.
"""

from __future__ import annotations

from typing import Any

from pytorch_lightning.callbacks import ModelCheckpoint


class Checkpoint(ModelCheckpoint):
    def __init__(
        self, *args: Any, monitor: str | None = None, every_n_train_steps: int | None = None, **kwargs: Any
    ):
        if monitor is not None:
            every_n_train_steps = None
            kwargs["every_n_epochs"] = 1  # with step-based validation: on every validation end
        super().__init__(*args, monitor=monitor, every_n_train_steps=every_n_train_steps, **kwargs)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.save_last and self._last_global_step_saved != trainer.global_step and not trainer.interrupted:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

"""Lightning's ModelCheckpoint, plus a final ``last.ckpt`` when training stops between save intervals."""

from __future__ import annotations

from pytorch_lightning.callbacks import ModelCheckpoint


class Checkpoint(ModelCheckpoint):
    """``last.ckpt`` always holds the final state: Lightning saves only at intervals, epoch ends and
    validation ends, so a run whose ``max_steps`` is not a multiple of ``every_n_train_steps`` would
    otherwise end with a stale ``last.ckpt``."""

    def on_train_end(self, trainer, pl_module) -> None:
        if self.save_last and self._last_global_step_saved != trainer.global_step and not trainer.interrupted:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

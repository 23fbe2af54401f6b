"""A test-only callback: stop training at a given step, as an interruption would (config unchanged)."""

import pytorch_lightning as pl


class StopAt(pl.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            trainer.should_stop = True

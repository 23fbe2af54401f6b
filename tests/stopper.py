"""A test-only callback: at a given step, send this process a signal, as a user's Ctrl-C or a cluster's
preemption would."""

import os
import signal

import pytorch_lightning as pl


class SignalAt(pl.Callback):
    def __init__(self, step: int, signum: int = signal.SIGTERM) -> None:
        self.step, self.signum = step, signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


def interrupt_at(monkeypatch, step: int, signum: int = signal.SIGTERM) -> None:
    """Make the next in-process `genlab train` receive ``signum`` when it reaches ``step``."""
    import genlab.run.train

    build = genlab.run.train.build_callbacks
    monkeypatch.setattr(
        genlab.run.train, "build_callbacks", lambda run: [*build(run), SignalAt(step, signum)]
    )

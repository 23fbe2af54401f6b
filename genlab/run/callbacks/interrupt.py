"""Stop ``trainer.fit`` cleanly between two training steps on Ctrl-C (SIGINT) or preemption (SIGTERM).

By default Lightning turns a SIGINT into a ``KeyboardInterrupt`` that ``Trainer.fit`` answers with
``sys.exit(1)``, and its own SIGTERM handler makes the loops raise ``SIGTERMException``: either way the
caller gets no chance to save the step reached. :class:`GracefulInterrupt` replaces both handlers while
training runs: the first signal is only recorded, and the next ``on_train_batch_end`` sets
``trainer.should_stop`` so that ``fit()`` finishes the step and returns normally. The caller then reads
:attr:`GracefulInterrupt.signum` / :attr:`GracefulInterrupt.exit_code`. A second signal while stopping
brings back the handlers that were there before ``fit()`` and acts on it (Ctrl-C twice raises
``KeyboardInterrupt`` at once).

The handlers go in at ``on_sanity_check_start`` / ``on_train_start``, after Lightning has registered
its SIGTERM handler (so they replace it rather than being wrapped by it), and the handlers that were
there before ``fit()`` are captured at ``on_fit_start``. Lightning's teardown puts those back as well,
also when ``fit()`` raises. Only a single-process run on the main thread is handled: with several
processes (DDP) every rank would have to agree on the step to stop at, so Lightning's behaviour is kept.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from types import FrameType
from typing import Any

import pytorch_lightning as pl

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulInterrupt(pl.Callback):
    """Turns the first SIGINT/SIGTERM during ``fit()`` into ``trainer.should_stop`` after the current step.

    Attributes:
        signum: the signal received during the latest ``fit()``, or None.
        stopped_step: ``trainer.global_step`` when the stop was requested, or None.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.stopped_step: int | None = None
        self._previous: dict[int, Any] = {}
        self._installed = False

    @property
    def exit_code(self) -> int | None:
        """The shell's status for death by that signal: 130 for SIGINT, 143 for SIGTERM; None if none."""
        return None if self.signum is None else 128 + self.signum

    @property
    def signal_name(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.signum = None
        self.stopped_step = None
        self._previous = {}
        if trainer.world_size != 1 or multiprocessing.parent_process() is not None:
            log.debug("GracefulInterrupt: not a single-process run, signals keep Lightning's behaviour")
            return
        # before Lightning's _SignalConnector wraps SIGTERM: these are what fit() must leave behind
        self._previous = {sig: signal.getsignal(sig) for sig in SIGNALS}

    def on_sanity_check_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._install()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._install()
        if self.signum is not None:  # received during the sanity check
            self._stop(trainer)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self.signum is not None:
            self._stop(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # a signal during a validation round inside fit(): stop before the next training step
        if self.signum is not None and self._installed and not trainer.sanity_checking:
            self._stop(trainer)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore()
        if self.signum is not None and self.stopped_step is None:  # received after the last step
            self.stopped_step = trainer.global_step

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._restore()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._restore()

    def _install(self) -> None:
        if self._installed or not self._previous:
            return
        try:
            for sig, previous in self._previous.items():
                if previous is None:  # installed outside Python: cannot be put back, leave it alone
                    continue
                # an ignored signal stays ignored (for SIGTERM this also drops Lightning's handler)
                signal.signal(sig, signal.SIG_IGN if previous == signal.SIG_IGN else self._handle)
        except ValueError:  # not the main thread
            self._previous = {}
            return
        self._installed = True

    def _restore(self) -> None:
        if not self._installed:
            return
        self._installed = False
        for sig, previous in self._previous.items():
            if previous is not None:
                signal.signal(sig, previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
            return
        # a second signal while stopping: the user insists, act as if we were not there
        previous = self._previous.get(signum)
        self._restore()
        if callable(previous):
            previous(signum, frame)  # signal.default_int_handler raises KeyboardInterrupt
        elif previous == signal.SIG_DFL:
            os.kill(os.getpid(), signum)  # the default action: SIGTERM (or SIGINT) terminates the process

    def _stop(self, trainer: pl.Trainer) -> None:
        if self.stopped_step is None:
            self.stopped_step = trainer.global_step
            log.debug(
                "GracefulInterrupt: %s received, stopping at step %d", self.signal_name, trainer.global_step
            )
        trainer.should_stop = True

"""GracefulInterrupt: SIGINT / SIGTERM during fit() stop training cleanly after the current step."""

from __future__ import annotations

import os
import signal
import threading

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from trainers import bare_trainer

from genlab.run.callbacks.interrupt import GracefulInterrupt

MAX_STEPS = 50


@pytest.fixture(autouse=True)
def _isolated():
    """One intra-op thread; the process's SIGINT/SIGTERM handlers are put back even if a test fails."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    torch.set_num_threads(threads)


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class TinyWithValidation(Tiny):
    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.net(x), y))


def loader(seed: int = 0, shuffle: bool = True) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    data = TensorDataset(torch.randn(64, 4, generator=g), torch.randn(64, 1, generator=g))
    return DataLoader(data, batch_size=4, shuffle=shuffle)


def trainer(*callbacks: pl.Callback, max_steps: int = MAX_STEPS, **overrides) -> pl.Trainer:
    return bare_trainer(max_steps, callbacks=list(callbacks), **overrides)


class SendSignals(pl.Callback):
    """Sends the given signals to this process at the end of training step ``step``."""

    def __init__(self, step: int, *signums: int) -> None:
        self.step = step
        self.signums = signums

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            for signum in self.signums:
                os.kill(os.getpid(), signum)


class SignalDuringValidation(pl.Callback):
    """Sends ``signum`` from the first validation batch, of the sanity check or of the first round."""

    def __init__(self, signum: int, sanity: bool) -> None:
        self.signum = signum
        self.sanity = sanity
        self.sent = False

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if not self.sent and trainer.sanity_checking == self.sanity:
            self.sent = True
            os.kill(os.getpid(), self.signum)


def handlers() -> dict:
    return {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}


def outer_sigterm(signum, frame):  # a handler installed before fit(), e.g. by a job launcher
    raise AssertionError("the handler that was there before fit() must not run on the first SIGTERM")


@pytest.mark.parametrize("custom_sigterm", [False, True], ids=["default", "custom-sigterm-handler"])
@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["INT", "TERM"]
)
def test_signal_stops_after_current_step(signum, code, custom_sigterm):
    if custom_sigterm:
        signal.signal(signal.SIGTERM, outer_sigterm)
    before = handlers()
    cb = GracefulInterrupt()
    t = trainer(SendSignals(5, signum), cb)  # the sender runs first: the stop comes in the same batch end
    t.fit(Tiny(), loader())  # no SystemExit, KeyboardInterrupt or SIGTERMException
    assert t.global_step == cb.stopped_step == 5
    assert t.state.status == "finished" and not t.interrupted and not t.received_sigterm
    assert cb.signum == signum and cb.exit_code == code and cb.signal_name == signal.Signals(signum).name
    assert handlers() == before  # not Lightning's SIGTERM wrapper, not ours


def test_signal_sent_after_the_callback_ran_stops_at_the_next_step():
    cb = GracefulInterrupt()
    t = trainer(cb, SendSignals(5, signal.SIGTERM))
    t.fit(Tiny(), loader())
    assert t.global_step == cb.stopped_step == 6
    assert cb.exit_code == 143


def test_without_signal_training_is_unchanged():
    before = handlers()
    results = []
    for callbacks in ([], [GracefulInterrupt()]):
        pl.seed_everything(0)
        model = Tiny()
        t = trainer(*callbacks)
        t.fit(model, loader())
        assert t.global_step == MAX_STEPS
        results.append(model.state_dict())
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])
    cb = t.callbacks[0]
    assert isinstance(cb, GracefulInterrupt)
    assert cb.signum is cb.exit_code is cb.signal_name is cb.stopped_step is None
    assert handlers() == before


@pytest.mark.parametrize("first", [signal.SIGINT, signal.SIGTERM], ids=["INT-INT", "TERM-INT"])
def test_second_signal_aborts(first):
    before = handlers()
    cb = GracefulInterrupt()
    t = trainer(SendSignals(5, first, signal.SIGINT), cb)
    # the second signal raises KeyboardInterrupt at once, which Lightning's fit() turns into sys.exit(1)
    with pytest.raises(SystemExit) as exc:
        t.fit(Tiny(), loader())
    assert exc.value.code == 1
    assert t.interrupted and t.global_step == 5  # no further step ran
    assert cb.signum == first
    assert handlers() == before


class Terminated(BaseException):
    """Stands for the process's death, which would end this test run."""


@pytest.mark.parametrize("previous", ["default", "custom"])
def test_second_sigterm_hands_over_to_the_previous_handler(previous, monkeypatch):
    calls = []
    if previous == "custom":

        def launcher_sigterm(signum, frame):  # e.g. a job launcher's: it runs on the second SIGTERM only
            calls.append(signal.getsignal(signal.SIGTERM))
            raise Terminated

        signal.signal(signal.SIGTERM, launcher_sigterm)
    else:
        real_kill = os.kill

        def kill(pid, signum):  # the default action, SIG_DFL, would end the process: record it instead
            if signal.getsignal(signum) != signal.SIG_DFL:
                return real_kill(pid, signum)
            calls.append(signal.getsignal(signum))
            raise Terminated

        monkeypatch.setattr(os, "kill", kill)
    before = handlers()
    cb = GracefulInterrupt()
    t = trainer(SendSignals(5, signal.SIGTERM, signal.SIGTERM), cb)
    with pytest.raises(Terminated):
        t.fit(Tiny(), loader())
    assert calls == [before[signal.SIGTERM]]  # called once, with the previous handler back in place
    assert t.global_step == 5 and cb.signum == signal.SIGTERM
    assert handlers() == before


@pytest.mark.parametrize(("sanity", "step"), [(True, 0), (False, 4)], ids=["sanity-check", "validation"])
def test_signal_during_validation_stops_before_next_step(sanity, step):
    cb = GracefulInterrupt()
    t = trainer(
        SignalDuringValidation(signal.SIGTERM, sanity), cb, val_check_interval=4, check_val_every_n_epoch=None
    )
    t.fit(TinyWithValidation(), loader(), loader(1, shuffle=False))
    assert t.global_step == cb.stopped_step == step
    assert cb.signum == signal.SIGTERM and not t.received_sigterm


def test_fit_outside_the_main_thread_installs_nothing():
    before = handlers()
    cb = GracefulInterrupt()
    t = trainer(cb, max_steps=3)
    errors = []

    def run():
        try:
            t.fit(Tiny(), loader())
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert not errors and t.global_step == 3
    assert cb.signum is None and handlers() == before

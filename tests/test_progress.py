"""One progress format: durations, byte sizes, the rate/ETA line and the heartbeat, shared by training's
progress lines, the eval/sample phases, the end-of-run summary, `genlab report` and `genlab clean`."""

from __future__ import annotations

import logging
import time

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset
from trainers import bare_trainer

from genlab.commands import clean
from genlab.report import leaderboard
from genlab.run import summary
from genlab.run.callbacks.progress import ProgressBar, ProgressConfig
from genlab.utils import resources
from genlab.utils.progress import Phases, Progress, byte_size, duration


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_duration_format():
    seconds = (0, 4.24, 42.4, 59.6, 185, 3723, 200000)
    assert [duration(s) for s in seconds] == ["0.0s", "4.2s", "42s", "1m00s", "3m05s", "1h02m", "2d07h"]


def test_byte_size_is_decimal():
    sizes = (512, 7_700, 3_600_000, 999_960, 1.2e9, 3e12)
    assert [byte_size(n) for n in sizes] == ["512 B", "7.7 kB", "3.6 MB", "1.0 MB", "1.2 GB", "3.0 TB"]


def test_every_command_formats_through_the_one_module():
    # `genlab clean`, `genlab report`, the run summary and the memory checks show what this module shows
    assert clean.byte_size is byte_size and clean.duration is duration
    assert leaderboard.fmt_time(185) == duration(185) and leaderboard.fmt_time(None) == ""
    assert summary.duration is duration and resources.byte_size is byte_size


def test_progress_lines_carry_rate_and_time_left_at_the_configured_cadence():
    clock, lines = Clock(), []
    progress = Progress(lines.append, "likelihood", 1000, "images", clock=clock, every=30.0, first=5.0)
    for _ in range(10):  # 100 images every 10 s
        clock.now += 10
        progress.update(100)
    progress.close()
    # first after 5 s, then at least 30 s apart
    assert lines == [
        "likelihood: 100/1000 images (10%), 10 images/s, 10s elapsed, about 1m30s left",
        "likelihood: 400/1000 images (40%), 10 images/s, 40s elapsed, about 1m00s left",
        "likelihood: 700/1000 images (70%), 10 images/s, 1m10s elapsed, about 30s left",
        "likelihood: 1000/1000 images (100%), 10 images/s, 1m40s elapsed",
    ]


def test_first_line_after_n_units_then_by_time_and_the_last_unit_always():
    clock, lines = Clock(), []
    progress = Progress(
        lines.append, "training", 1000, "steps", clock=clock, every=30, first=30, first_count=10, final=True
    )
    clock.now = 5
    progress.reach(9)
    assert not lines
    progress.reach(10, lambda: "loss=0.5")
    assert lines == ["training: 10/1000 steps (1%), 2 steps/s, 5.0s elapsed, about 8m15s left | loss=0.5"]
    clock.now = 34
    progress.reach(60)
    assert len(lines) == 1
    clock.now = 35
    progress.reach(70)
    progress.reach(1000)  # the last step gets its line however soon
    assert len(lines) == 3 and lines[-1].startswith("training: 1000/1000 steps (100%)")


def test_resumed_progress_rates_only_the_work_since_the_start():
    clock, lines = Clock(), []
    progress = Progress(
        lines.append, "validation", None, "batches", clock=clock, every=30, first=30, done=500
    )
    clock.now = 30
    progress.reach(1100)
    assert lines == ["validation: 1100 batches, 20 batches/s, 30s elapsed"]


def test_heartbeat_reports_while_one_iteration_takes_long(caplog):
    phases = Phases("eval", every=1.0, first=0.2)
    with caplog.at_level(logging.INFO, logger="genlab"):
        with phases.phase("likelihood", total=10, unit="images") as progress:
            time.sleep(1.6)  # the first batch is still running: no update yet
            during = [r.getMessage() for r in caplog.records]
            progress.update(10)
    assert during[0] == "eval: likelihood ... (10 images)"
    assert any(m.startswith("eval: likelihood: 0/10 images (0%)") for m in during[1:])
    assert caplog.records[-1].getMessage().startswith("eval: likelihood done in ")


def test_quiet_phases_speak_only_when_slow(caplog):
    clock = Clock()
    phases = Phases("sample", announce=False, clock=clock, every=0.5, first=3.0)
    with caplog.at_level(logging.INFO, logger="genlab"):
        with phases.phase("sampling", total=2, unit="samples") as p:
            clock.now = 1.0
            p.update(2)
        assert not caplog.records  # done in 1 s: silent
        with phases.phase("sampling", total=2, unit="samples") as p:
            clock.now = 5.0
            p.update(1)
            clock.now = 9.0
            p.update(1)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("sample: sampling: 1/2 samples (50%)")
    assert messages[-1] == "sample: sampling done in 8.0s"
    assert Phases.off().enabled is False


class TenSecondSteps(pl.LightningModule):
    """Each training step takes 10 s on ``clock``."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.clock = clock

    def training_step(self, batch, batch_idx):
        self.clock.now += 10
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(64, 2)), batch_size=4)


def test_training_and_eval_phases_write_the_same_progress_line(caplog):
    """Training's progress lines (no terminal) and an eval phase timed alike read the same."""
    clock = Clock()
    bar = ProgressBar(ProgressConfig(first_line_step=100, line_every_s=30), clock=clock)
    with caplog.at_level(logging.INFO, logger="genlab"):
        bare_trainer(4, enable_progress_bar=True, callbacks=[bar]).fit(TenSecondSteps(clock))
    training = [r.getMessage() for r in caplog.records if r.getMessage().startswith("training: ")]
    assert len(training) == 2 and all(" | train/loss=" in line for line in training)  # at 30 s, and the end

    caplog.clear()
    clock.now = 0.0
    phases = Phases("eval", clock=clock, every=30, first=30)
    with caplog.at_level(logging.INFO, logger="genlab"):
        with phases.phase("training", total=4, unit="steps") as p:
            for _ in range(4):
                clock.now += 10
                p.update()
    phase_lines = [r.getMessage().removeprefix("eval: ") for r in caplog.records][1:-1]
    assert phase_lines == ["training: 3/4 steps (75%), 0.1 steps/s, 30s elapsed, about 10s left"]
    assert training[0].split(" | ")[0] == phase_lines[0]
    assert training[1].split(" | ")[0] == "training: 4/4 steps (100%), 0.1 steps/s, 40s elapsed"


class SlowValidation(TenSecondSteps):
    """Each validation batch takes 40 s on ``clock``."""

    def validation_step(self, batch, batch_idx):
        self.clock.now += 40

    def val_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(12, 2)), batch_size=4)


def test_validation_reports_its_batches_and_its_time(caplog):
    clock = Clock()
    bar = ProgressBar(ProgressConfig(line_every_s=30), clock=clock)
    trainer = bare_trainer(2, enable_progress_bar=True, callbacks=[bar], val_check_interval=2)
    with caplog.at_level(logging.INFO, logger="genlab"):
        trainer.fit(SlowValidation(clock))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("validation")]
    assert lines[0] == "validation: 1/3 batches (33%), 0.025 batches/s, 40s elapsed, about 1m20s left"
    assert lines[-1] == "validation at step 2 done in 2m00s"

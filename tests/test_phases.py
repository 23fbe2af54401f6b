"""Phase and progress lines: start/end with times, rate and time left, at least every PROGRESS_EVERY seconds."""

from __future__ import annotations

import logging
import time

from genlab.utils.progress import Phases, Progress, duration


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines_carry_rate_and_time_left_at_the_configured_cadence():
    clock, lines = Clock(), []
    progress = Progress(lines.append, "likelihood", 1000, "images", clock, every=30.0, first=5.0)
    for _ in range(10):  # 100 images every 10 s
        clock.now += 10
        progress.update(100)
    progress.close()
    # first after 5 s, then at least 30 s apart
    assert lines == [
        "likelihood: 100/1000 images (10%), 10 images/s, 10.0 s elapsed, about 1:30 left",
        "likelihood: 400/1000 images (40%), 10 images/s, 40.0 s elapsed, about 1:00 left",
        "likelihood: 700/1000 images (70%), 10 images/s, 1:10 elapsed, about 30.0 s left",
        "likelihood: 1000/1000 images (100%), 10 images/s, 1:40 elapsed",
    ]


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
    assert messages[-1] == "sample: sampling done in 8.0 s"
    assert Phases.off().enabled is False


def test_duration_format():
    assert [duration(s) for s in (4.24, 185, 3723)] == ["4.2 s", "3:05", "1:02:03"]

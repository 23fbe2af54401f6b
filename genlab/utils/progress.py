"""Feedback during long commands: a line when a phase starts and when it ends (with its time), and inside
long loops a progress line with the rate and the time left, at least every ``PROGRESS_EVERY`` seconds.

Plain log lines, no carriage returns or bars: they read the same in a terminal, a log file and a CI log.
``Phases("eval")`` announces every phase; ``Phases("sample", announce=False)`` stays silent unless a phase
takes longer than ``FIRST_PROGRESS`` seconds; ``Phases.off()`` prints nothing (metrics inside training).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from contextlib import contextmanager
from typing import Any, TypeVar

log = logging.getLogger("genlab")

PROGRESS_EVERY = 30.0  # seconds between two progress lines of one phase
FIRST_PROGRESS = 5.0  # seconds before a phase's first progress line
T = TypeVar("T")


def duration(seconds: float) -> str:
    """``4.2 s``, ``3:05``, ``1:02:03``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Counts work done in one phase and logs ``done/total unit (pct), rate, time left`` now and then.

    Lines come from :meth:`update` and, between updates, from a heartbeat thread, so a loop whose single
    iterations take minutes still reports at least every ``every`` seconds (``every`` >= 1)."""

    def __init__(
        self,
        emit: Callable[[str], None] | None,
        label: str,
        total: int | None,
        unit: str,
        clock: Callable[[], float],
        every: float,
        first: float,
    ) -> None:
        self.emit, self.label, self.total, self.unit = emit, label, total, unit
        self.clock, self.every = clock, every
        self.done = 0
        self.lines = 0
        self.start = clock()
        self.next_line = self.start + first
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        if emit is not None and every >= 1:
            self._heartbeat = threading.Thread(target=self._beat, name="genlab-progress", daemon=True)
            self._heartbeat.start()

    def update(self, n: int = 1) -> None:
        self.done += n
        self._maybe_emit()

    def _maybe_emit(self) -> None:
        with self._lock:
            now = self.clock()
            if self.emit is None or now < self.next_line:
                return
            self.next_line = now + self.every
            self.lines += 1
            self.emit(self.line(now))

    def _beat(self) -> None:
        while not self._stop.wait(min(self.every, 5.0)):
            self._maybe_emit()

    def close(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()

    def line(self, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        text = f"{self.label}: {self.done}"
        if self.total:
            text += f"/{self.total} {self.unit} ({100 * self.done / self.total:.0f}%)"
        else:
            text += f" {self.unit}"
        text += f", {rate:.3g} {self.unit}/s, {duration(elapsed)} elapsed"
        if self.total and rate > 0 and self.done < self.total:
            text += f", about {duration((self.total - self.done) / rate)} left"
        return text

    def track(self, items: Iterable[T], size: Callable[[T], int] | None = None) -> Iterator[T]:
        """Yield ``items``, counting each (or ``size(item)`` of each) after the caller is done with it."""
        for item in items:
            yield item
            self.update(size(item) if size else 1)


class Phases:
    """The phases of one command, each announced on ``logger`` with the command's ``prefix``."""

    def __init__(
        self,
        prefix: str,
        announce: bool = True,
        enabled: bool = True,
        logger: logging.Logger = log,
        clock: Callable[[], float] = time.monotonic,
        every: float | None = None,
        first: float | None = None,
    ) -> None:
        self.prefix, self.announce, self.enabled, self.logger, self.clock = (
            prefix,
            announce,
            enabled,
            logger,
            clock,
        )
        self.every, self.first = every, first

    @classmethod
    def off(cls) -> Phases:
        return cls("", enabled=False)

    def info(self, message: str) -> None:
        if self.enabled:
            self.logger.info("%s: %s", self.prefix, message)

    @contextmanager
    def phase(self, name: str, total: int | None = None, unit: str = "items") -> Iterator[Progress]:
        """``with phases.phase("likelihood", total=n, unit="images") as p: ... p.update(k) ...``"""
        every = PROGRESS_EVERY if self.every is None else self.every
        first = FIRST_PROGRESS if self.first is None else self.first
        if self.announce:
            self.info(f"{name} ..." + (f" ({total} {unit})" if total else ""))
        emit = self.info if self.enabled else None
        progress = Progress(emit, name, total, unit, self.clock, every, first)
        try:
            yield progress
        finally:
            progress.close()
        if self.announce or progress.lines:
            self.info(f"{name} done in {duration(self.clock() - progress.start)}")


def items_in(batch: Any) -> int:
    return len(batch) if isinstance(batch, Sized) else 1

"""Feedback during long work, in one format for all of genlab: durations, byte sizes, the progress line
(``done/total unit (pct), rate, elapsed, time left``) and the heartbeat that keeps a slow loop reporting.

Plain log lines, no carriage returns or bars: they read the same in a terminal, a log file and a CI log.
Byte sizes are decimal (1 kB = 1000 B, as ``du --si`` and file managers show them).

Training's progress lines (``genlab.run.callbacks.progress``) and the phases of eval and sample both come
from :class:`Progress`. ``Phases("eval")`` announces every phase; ``Phases("sample", announce=False)`` stays
silent unless a phase takes longer than ``FIRST_PROGRESS`` seconds; ``Phases.off()`` prints nothing
(metrics inside training).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from contextlib import contextmanager
from typing import Any, TypeVar

log = logging.getLogger("genlab")

PROGRESS_EVERY = 30.0  # seconds between two progress lines of one loop
FIRST_PROGRESS = 5.0  # seconds before a phase's first progress line
HEARTBEAT_MAX_WAIT = 5.0  # the heartbeat looks at least this often whether a line is due
T = TypeVar("T")


def duration(seconds: float) -> str:
    """``4.2s`` (under 10 s), ``42s``, ``3m05s``, ``1h02m``, ``2d03h``."""
    seconds = max(0.0, float(seconds))
    if seconds < 9.95:
        return f"{seconds:.1f}s"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def byte_size(nbytes: float) -> str:
    """``512 B``, ``7.7 kB``, ``3.6 MB``, ``1.2 GB``: decimal units (1 kB = 1000 B)."""
    n = float(nbytes)
    if n < 1000:
        return f"{n:.0f} B"
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1000
        if n < 999.95:
            return f"{n:.1f} {unit}"
    return f"{n / 1000:.1f} PB"


def progress_line(done: int, total: int | None, unit: str, elapsed: float, start: int = 0) -> str:
    """``100/1000 images (10%), 10 images/s, 10.0s elapsed, about 1m30s left``; without a total
    ``600 batches, 20 batches/s, 30s elapsed``. The rate counts from ``start`` (a resumed run's first step)."""
    rate = (done - start) / elapsed if elapsed > 0 else 0.0
    text = f"{done}/{total} {unit} ({100 * done / total:.0f}%)" if total else f"{done} {unit}"
    text += f", {rate:.3g} {unit}/s, {duration(elapsed)} elapsed"
    if total and rate > 0 and done < total:
        text += f", about {duration((total - done) / rate)} left"
    return text


class Progress:
    """Counts the work of one loop and emits ``<label>: <progress line>`` now and then.

    The first line comes ``first`` seconds after the start, or as soon as ``first_count`` units are done
    (so the rate shows early), then lines at least ``every`` seconds apart; with ``final`` the last unit
    always gets its line. Lines come from :meth:`update` / :meth:`reach` and, between them, from a
    heartbeat thread, so a loop whose single iterations take minutes still reports (``heartbeat=False``, or
    ``every`` under 1 s: lines from updates only). ``emit=None`` counts silently."""

    def __init__(
        self,
        emit: Callable[[str], None] | None,
        label: str,
        total: int | None,
        unit: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        every: float = PROGRESS_EVERY,
        first: float = FIRST_PROGRESS,
        first_count: int | None = None,
        done: int = 0,
        final: bool = False,
        heartbeat: bool = True,
    ) -> None:
        self.emit, self.label, self.total, self.unit = emit, label, total, unit
        self.clock, self.every, self.first_count, self.final = clock, every, first_count, final
        self.done = self.start_count = done
        self.lines = 0
        self.start = clock()
        self.next_line = self.start + first
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        if emit is not None and heartbeat and every >= 1:
            self._heartbeat = threading.Thread(target=self._beat, name="genlab-progress", daemon=True)
            self._heartbeat.start()

    def update(self, n: int = 1, detail: Callable[[], str] | None = None) -> None:
        """``n`` more units done; ``detail()`` (called only when a line is due) is appended after `` | ``."""
        self.reach(self.done + n, detail)

    def reach(self, done: int, detail: Callable[[], str] | None = None) -> None:
        """``done`` units done in all (e.g. the trainer's global step)."""
        self.done = done
        self._maybe_emit(detail)

    def elapsed(self) -> float:
        return self.clock() - self.start

    def _due(self, now: float) -> bool:
        if now >= self.next_line:
            return True
        if self.final and self.total and self.done >= self.total:
            return True
        return (
            self.lines == 0
            and self.first_count is not None
            and self.done - self.start_count >= self.first_count
        )

    def _maybe_emit(self, detail: Callable[[], str] | None = None) -> None:
        with self._lock:
            now = self.clock()
            if self.emit is None or not self._due(now):
                return
            self.next_line = now + self.every
            self.lines += 1
            text = self.line(now)
            extra = detail() if detail is not None else ""
            self.emit(f"{text} | {extra}" if extra else text)

    def _beat(self) -> None:
        while not self._stop.wait(min(self.every, HEARTBEAT_MAX_WAIT)):
            self._maybe_emit()

    def close(self) -> None:
        self._stop.set()
        if self._heartbeat is not None and self._heartbeat is not threading.current_thread():
            self._heartbeat.join()

    def line(self, now: float) -> str:
        elapsed = now - self.start
        return f"{self.label}: {progress_line(self.done, self.total, self.unit, elapsed, self.start_count)}"

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
        progress = Progress(emit, name, total, unit, clock=self.clock, every=every, first=first)
        try:
            yield progress
        finally:
            progress.close()
        if self.announce or progress.lines:
            self.info(f"{name} done in {duration(progress.elapsed())}")


def items_in(batch: Any) -> int:
    return len(batch) if isinstance(batch, Sized) else 1

"""How many CPU threads torch uses when ``threads`` is not set: the cores free when the run starts.

torch's own default (one thread per core) assumes the cores are idle; on a busy machine its threads spin
waiting for each other and a small model's step runs 10-20x slower than with one thread per free core.
"""

from __future__ import annotations

import os
import time


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def busy_cores(samples: int = 5, interval_s: float = 0.02, stat: str = "/proc/stat") -> float:
    """Runnable processes other than this one (median of a few instantaneous readings of ``procs_running``);
    falls back to the 1-minute load average where ``/proc/stat`` is missing."""
    readings = []
    for i in range(samples):
        try:
            with open(stat) as f:
                line = next((ln for ln in f if ln.startswith("procs_running")), None)
        except OSError:
            line = None
        if line is None:
            return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        readings.append(int(line.split()[1]) - 1)  # this process is running while it reads
        if i + 1 < samples:
            time.sleep(interval_s)
    return float(sorted(readings)[len(readings) // 2])


def use_threads(threads: int | None, processes: int = 1) -> int:
    """Set torch's CPU threads to ``threads``, or to :func:`default_threads` when it is None; return it."""
    import torch

    chosen = threads or default_threads(processes)
    torch.set_num_threads(chosen)
    return chosen


def default_threads(processes: int = 1, cores: int | None = None, busy: float | None = None) -> int:
    """Threads per process: the free cores shared among this run's processes, at least one."""
    cores = usable_cores() if cores is None else cores
    busy = busy_cores() if busy is None else busy
    free = max(1, int(cores - busy + 0.5))
    return max(1, free // max(1, processes))

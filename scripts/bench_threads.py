"""`make train` on a quiet machine and beside another CPU-bound process, with genlab's default threads.

    python scripts/bench_threads.py                  # the full quickstart, twice (about 7 minutes on 2 cores)
    python scripts/bench_threads.py --steps 300      # shorter
    python scripts/bench_threads.py --also-fixed 2   # also threads=2 under load (torch's own default here)
    python scripts/bench_threads.py --steps 600 --matrix   # 1 and 2 threads, quiet and loaded (README table)

Prints each wall time and the loaded/quiet ratio. Run it on an otherwise idle machine: the "quiet" time
is only quiet if nothing else runs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def spin(stop) -> None:
    """A CPU-bound process: a tight Python loop until told to stop."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def train_once(steps: int | None, extra: list[str], env: dict[str, str] | None = None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        args = ["experiment=quickstart", f"hydra.run.dir={tmp}/run", *extra]
        if steps:
            args.append(f"trainer.max_steps={steps}")
        started = time.perf_counter()
        command = [sys.executable, "-m", "genlab", "train", *args]
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, **(env or {})})
        return time.perf_counter() - started


def under_load(steps: int | None, extra: list[str], env: dict[str, str] | None = None) -> float:
    stop = multiprocessing.Event()
    load = multiprocessing.Process(target=spin, args=(stop,), daemon=True)
    load.start()
    time.sleep(2)  # let the scheduler see it running
    try:
        return train_once(steps, extra, env)
    finally:
        stop.set()
        load.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="trainer.max_steps (default: the preset's)")
    parser.add_argument("--also-fixed", type=int, default=None, help="also time threads=N under load")
    parser.add_argument("--matrix", action="store_true", help="time fixed thread counts, quiet and loaded")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    if args.matrix:
        matrix(args.steps)
        return
    quiet = train_once(args.steps, [])
    loaded = under_load(args.steps, [])
    print(f"quiet machine, default threads:        {quiet:7.1f} s")
    print(f"one CPU-bound process, default threads: {loaded:7.1f} s  ({loaded / quiet:.2f}x the quiet time)")
    if args.also_fixed:
        fixed = under_load(args.steps, [f"threads={args.also_fixed}"])
        print(
            f"one CPU-bound process, threads={args.also_fixed}:      {fixed:7.1f} s  ({fixed / quiet:.2f}x)"
        )


def matrix(steps: int | None) -> None:
    """Fixed thread counts side by side: what the default chooses against what it could have chosen."""
    passive = {"OMP_WAIT_POLICY": "PASSIVE"}  # OpenMP threads sleep instead of spinning at barriers
    cases = [
        ("quiet, 2 threads", train_once, ["threads=2"], {}),
        ("quiet, 1 thread", train_once, ["threads=1"], {}),
        ("beside a CPU-bound process, 1 thread", under_load, ["threads=1"], {}),
        (
            "beside a CPU-bound process, 2 threads, OMP_WAIT_POLICY=PASSIVE",
            under_load,
            ["threads=2"],
            passive,
        ),
    ]
    for name, timed, extra, env in cases:
        print(f"| {name} | {timed(steps, extra, env):.1f} s |", flush=True)


if __name__ == "__main__":
    main()

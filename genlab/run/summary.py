"""The few lines a finished run ends with: what it reached, where its samples are, what to run next."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genlab.utils.progress import duration

MAX_METRICS = 8


def latest_grid(run_dir: Path) -> Path | None:
    """The newest image in ``<run dir>/samples`` (file names carry the zero-padded step)."""
    grids = sorted(
        (run_dir / "samples").glob("*_step*.png"), key=lambda p: (p.stem.rsplit("_step", 1)[-1], p.name)
    )
    return grids[-1] if grids else None


def key_metrics(metrics: dict[str, Any], monitor: str | None) -> dict[str, float]:
    """The monitored metric first, then the validation metrics (the training losses when there are none)."""
    numbers = {k: v for k, v in metrics.items() if isinstance(v, float | int) and not isinstance(v, bool)}
    chosen = sorted(k for k in numbers if k.startswith("val/")) or sorted(
        k for k in numbers if k.startswith("train/")
    )
    if monitor in numbers:
        chosen = [monitor, *(k for k in chosen if k != monitor)]
    return {k: numbers[k] for k in chosen[:MAX_METRICS]}


def tensorboard_command(run_dir: Path) -> str:
    """``make tensorboard`` serves ``outputs/`` of the checkout it runs in; other run dirs get their own."""
    outputs = Path.cwd() / "outputs"
    if (Path.cwd() / "Makefile").is_file() and run_dir.is_relative_to(outputs.resolve()):
        return "make tensorboard"
    return f"tensorboard --logdir {run_dir}"


def summary_lines(run_dir: Path, metrics: dict[str, Any], monitor: str | None, elapsed_s: float) -> list[str]:
    shown = " ".join(f"{k}={v:.4g}" for k, v in key_metrics(metrics, monitor).items())
    lines = [
        f"{metrics.get('status', 'finished')} at step {metrics.get('global_step', 0)} in {duration(elapsed_s)}"
    ]
    if shown:
        lines.append(f"  metrics: {shown}")
    grid = latest_grid(run_dir)
    if grid is not None:
        lines.append(f"  samples: {grid}")
    last = run_dir / "checkpoints" / "last.ckpt"
    lines.append(f"  run dir: {run_dir}")
    lines.append(f"  next:    {tensorboard_command(run_dir)}  (curves and image grids)")
    if last.is_file():
        lines.append(f"           genlab sample ckpt={last} n=64")
        lines.append(f"           genlab eval ckpt={last}")
    return lines

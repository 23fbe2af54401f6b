"""The logged curves of a run: TensorBoard's event files (tensorboard's own reader), else ``csv/metrics.csv``.

Only scalars are kept in full; of the images only the latest per tag (the VAE's reconstructions), so reading
a long run's event files costs little memory. ``jobs`` > 1 reads runs in worker processes.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from genlab.utils.rundir import is_real_dir, open_regular

# tags that are not curves: Lightning's epoch counter and genlab's HParams-tab copies of the final values
SKIPPED_TAGS = ("epoch", "hp_metric")
SKIPPED_PREFIXES = ("final/",)
# TensorBoard image tags shown beside the sample grids
IMAGE_TAGS = ("images/reconstructions",)


@dataclass
class Curves:
    """One run's scalars: ``tag -> (steps, values)``, plus the latest PNG of each image tag in IMAGE_TAGS."""

    scalars: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    images: dict[str, tuple[int, bytes]] = field(default_factory=dict)  # tag -> (step, PNG bytes)
    source: str = ""  # "tensorboard" | "csv" | ""
    note: str | None = None  # why nothing could be read

    def last(self, tag: str) -> float | None:
        series = self.scalars.get(tag)
        return series[1][-1] if series and series[1] else None

    @property
    def max_step(self) -> int | None:
        steps = [s[0][-1] for s in self.scalars.values() if s[0]]
        return max(steps) if steps else None


def read_curves(run_dir: Path) -> Curves:
    """The curves of one run dir; a run without readable logs gets a :attr:`Curves.note`, not an exception."""
    tb_dir = run_dir / "tensorboard"
    has_events = is_real_dir(tb_dir) and any(
        p.name.startswith("events.out.tfevents") for p in tb_dir.iterdir()
    )
    csv_file = run_dir / "csv" / "metrics.csv"
    if has_events:
        try:
            return _read_tensorboard(tb_dir)
        except Exception as e:  # noqa: BLE001 - a damaged event file: fall back to csv, else note it
            note = f"event files unreadable ({' '.join(str(e).split())[:160]})"
    else:
        note = "no event files (tensorboard/ or csv/metrics.csv)"
    if os.path.lexists(csv_file):
        try:
            return _read_csv(csv_file, run_dir)
        except (OSError, ValueError, csv.Error) as e:
            note = f"csv/metrics.csv unreadable ({' '.join(str(e).split())[:80]})"
    return Curves(note=note)


def _keep(tag: str) -> bool:
    return tag not in SKIPPED_TAGS and not tag.startswith(SKIPPED_PREFIXES)


def _read_tensorboard(tb_dir: Path) -> Curves:
    from tensorboard.backend.event_processing import event_accumulator as ea

    from genlab.report.events import accumulator

    size_guidance = {
        ea.SCALARS: 0,  # 0: keep every point
        ea.IMAGES: 1,  # a reservoir of 1 keeps the latest
        ea.AUDIO: 1,
        ea.HISTOGRAMS: 1,
        ea.COMPRESSED_HISTOGRAMS: 1,
        ea.TENSORS: 1,
    }
    acc = accumulator(tb_dir, size_guidance)
    tags = acc.Tags()
    curves = Curves(source="tensorboard")
    for tag in tags.get(ea.SCALARS, []):
        if _keep(tag):
            events = acc.Scalars(tag)
            curves.scalars[tag] = ([e.step for e in events], [e.value for e in events])
    for tag in tags.get(ea.IMAGES, []):
        if tag in IMAGE_TAGS:
            latest = acc.Images(tag)[-1]
            curves.images[tag] = (latest.step, latest.encoded_image_string)
    return curves


def _read_csv(path: Path, run_dir: Path) -> Curves:
    """Lightning's CSVLogger file: a ``step`` column and one sparse column per metric."""
    curves = Curves(source="csv")
    with os.fdopen(open_regular(path, within=run_dir), newline="", errors="replace") as f:
        for row in csv.DictReader(f):
            try:
                step = int(float(row.get("step") or "nan"))
            except ValueError:
                continue
            for tag, text in row.items():
                if tag in (None, "step") or not text or not _keep(tag):
                    continue
                try:
                    value = float(text)
                except ValueError:
                    continue
                steps, values = curves.scalars.setdefault(tag, ([], []))
                steps.append(step)
                values.append(value)
    return curves


def read_all(run_dirs: list[Path], jobs: int = 1) -> list[Curves]:
    """:func:`read_curves` of every run dir, in order; in ``jobs`` worker processes when more than one.

    Reading takes ~25 ms for a 3000-step run (scripts/bench_report.py), so workers, which take about a second
    to start, only pay off for sweeps of long runs on many cores.
    """
    jobs = min(jobs, len(run_dirs))
    if jobs <= 1:
        return [read_curves(p) for p in run_dirs]
    # forkserver: workers do not inherit this process's threads or open files (fork can deadlock with them)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["genlab.report.scalars", "genlab.report.events"])
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        return list(pool.map(read_curves, run_dirs, chunksize=max(1, len(run_dirs) // (4 * jobs))))

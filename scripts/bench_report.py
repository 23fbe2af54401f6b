"""How long `genlab report` takes on a 50-run sweep: reading the event files (tensorboard's own reader,
genlab's checksum-on-failure reading, and that in one worker process per core) and the whole report, side by
side in ONE process.

The sweep is synthesized: one real run (a small DCGAN on the built-in shapes data, trained here unless --run
is given) copied 50 times, each copy with its own ``seed=<i>`` override. With --long, each copy's event file is
replaced by one of a long run (--long-steps steps logged every 50, 12 scalar tags, the run's own sample grid
and interpolation logged every 500 steps), as a real multi-hour sweep would leave.

    python scripts/bench_report.py                 # 50 copies of a 300-step run
    python scripts/bench_report.py --long          # 50 copies of a 20k-step event file
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from genlab.cli import main as genlab
from genlab.commands.report import Request, make_report
from genlab.report.scalars import read_all

TINY_GAN = [
    "dataset=shapes",
    "model=gan",
    "model.g_width=8",
    "model.d_width=8",
    "model.latent_dim=16",
    "dataset.batch_size=16",
    "trainer.accelerator=cpu",
    "trainer.limit_val_batches=2",
    "threads=1",
]


def train_run(run_dir: Path, steps: int) -> None:
    every = max(1, steps // 6)
    code = genlab(
        [
            "train",
            f"hydra.run.dir={run_dir}",
            *TINY_GAN,
            f"trainer.max_steps={steps}",
            f"trainer.val_check_interval={every}",
            "trainer.log_every_n_steps=5",
            f"callbacks.model_checkpoint.every_n_train_steps={steps}",
            "optimized_metric=val/loss_d",
        ]
    )
    assert code in (None, 0)


def write_long_events(tb_dir: Path, steps: int, sample_png: Path) -> None:
    """One event file as a long run leaves it: 12 scalars every 50 steps, two image grids every 500."""
    import numpy as np
    import torch
    from PIL import Image
    from torch.utils.tensorboard import SummaryWriter

    for old in tb_dir.glob("events.out.tfevents.*"):
        old.unlink()
    grid = torch.from_numpy(np.array(Image.open(sample_png).convert("RGB"))).permute(2, 0, 1)
    writer = SummaryWriter(str(tb_dir))
    tags = [f"train/{n}" for n in ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g")]
    tags += [f"val/{n}" for n in ("loss_d", "loss_g", "d_real", "d_fake")] + ["train/lr_g", "train/lr_d"]
    for step in range(0, steps, 50):
        for i, tag in enumerate(tags):
            writer.add_scalar(tag, float(np.sin(step / 1000 + i)), step)
        if step % 500 == 0:
            writer.add_image("images/samples", grid, step)
            writer.add_image("images/interpolation", grid.flip(1), step)
    writer.close()


def make_sweep(source: Path, sweep: Path, n: int, long_steps: int | None) -> None:
    if long_steps:
        sample = sorted((source / "samples").glob("samples_step*.png"))[-1]
        write_long_events(source / "tensorboard", long_steps, sample)
    for i in range(n):
        job = sweep / str(i)
        shutil.copytree(source, job, ignore=shutil.ignore_patterns("*.ckpt", ".genlab.lock"))
        overrides = job / ".hydra" / "overrides.yaml"
        overrides.write_text(overrides.read_text() + f"- seed={i}\n")


def stock_read(run_dir: Path) -> None:
    from tensorboard.backend.event_processing import event_accumulator as ea

    guidance = {
        ea.SCALARS: 0,
        ea.IMAGES: 1,
        ea.AUDIO: 1,
        ea.HISTOGRAMS: 1,
        ea.COMPRESSED_HISTOGRAMS: 1,
        ea.TENSORS: 1,
    }
    ea.EventAccumulator(str(run_dir / "tensorboard"), size_guidance=guidance).Reload()


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--steps", type=int, default=300, help="steps of the real run that is copied")
    parser.add_argument("--run", type=Path, help="copy this run dir instead of training one")
    parser.add_argument("--long", action="store_true", help="replace the event files by a long run's")
    parser.add_argument("--long-steps", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=2, help="best of N for each measurement")
    parser.add_argument("--stock-runs", type=int, help="time tensorboard's own reader on this many runs only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = tmp / "source"
        if args.run:
            shutil.copytree(args.run, source, ignore=shutil.ignore_patterns("*.ckpt", ".genlab.lock"))
        else:
            train_run(source, args.steps)
        sweep = tmp / "sweep"
        make_sweep(source, sweep, args.runs, args.long_steps if args.long else None)
        dirs = sorted((p for p in sweep.iterdir()), key=lambda p: int(p.name))
        size = sum(f.stat().st_size for d in dirs for f in (d / "tensorboard").glob("events.*"))
        cores = os.cpu_count() or 1
        some = dirs[: args.stock_runs or len(dirs)]
        stock = (
            min(timed(lambda: [stock_read(d) for d in some])[0] for _ in range(args.repeat))
            / len(some)
            * len(dirs)
        )
        serial = min(timed(lambda: read_all(dirs, jobs=1))[0] for _ in range(args.repeat))
        parallel = min(timed(lambda: read_all(dirs, jobs=cores))[0] for _ in range(args.repeat))
        curves = read_all(dirs, jobs=1)
        points = sum(len(s[0]) for c in curves for s in c.scalars.values())
        out = tmp / "report" / "report.html"
        full = min(
            timed(lambda: make_report(Request(paths=[str(sweep)], out=out)))[0] for _ in range(args.repeat)
        )
        page_mb = out.stat().st_size / 2**20
    print(f"{args.runs} runs, {size / 2**20:.1f} MiB of event files, {points} scalar points")
    of = f", timed on {len(some)} runs" if len(some) < len(dirs) else ""
    print(
        f"tensorboard's EventAccumulator as is:  {stock:6.2f} s  ({stock / args.runs * 1000:.0f} ms/run{of})"
    )
    print(
        f"genlab report's reading, 1 process:    {serial:6.2f} s  ({serial / args.runs * 1000:.0f} ms/run, {stock / serial:.0f}x)"
    )
    print(f"read event files, {cores} worker processes:  {parallel:6.2f} s  ({serial / parallel:.1f}x)")
    print(f"whole report (read, plots, page):      {full:6.2f} s  (page {page_mb:.1f} MiB)")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {cores} cores")


if __name__ == "__main__":
    main()

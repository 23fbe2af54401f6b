"""`make bench`: training throughput in images/s, three ways, in ONE process.

1. genlab      — `genlab.run.train.train` with the real datamodule (tensor slices, on-device) and LightningModule
2. plain       — a hand-written PyTorch loop: same nets, same losses, same batch, data already in memory
3. pil-loader  — torchvision MNIST + per-sample PIL transforms + DataLoader(workers=2), as in
                 pytorch/examples' dcgan, feeding the same plain loop

Families: the GAN (DCGAN, 32x32, batch 128, MNIST resized) and the VAE (conv, 28x28 MNIST, batch 128).
Each figure: images/s over --steps timed steps after --warmup steps. Ratios (1)/(2) and (1)/(3) printed.

The training health monitor's cost: genlab's step time with ``callbacks.health.enabled=true`` over ``false``,
side by side in this process (--health-rounds alternating pairs of --health-steps timed steps at the default
logging cadence, so the monitor works on every ``trainer.log_every_n_steps``-th step); the median ratio minus 1
is the overhead (target: under 2%).
Data: real MNIST from --data-dir (default: a temp copy of ../shared/datasets when present).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from genlab.commands.compose import compose_config
from genlab.models.gan.losses import LOSSES
from genlab.models.optim import build_optimizer
from genlab.models.vae import objective
from genlab.run.config import resolve_run
from genlab.run.train import build, train
from genlab.utils.atomic import write_text_atomic

REPO = Path(__file__).resolve().parents[1]
FAMILIES = {
    "gan": {"overrides": ["model=gan", "model.net=dcgan"], "size": 32, "value_range": (-1.0, 1.0)},
    "vae": {
        "overrides": ["model=vae", "model.net=conv", "model.iw_samples=1"],
        "size": 28,
        "value_range": (0.0, 1.0),
    },
}


class StepTimer(pl.Callback):
    """Wall time of training steps warmup+1 .. warmup+steps (synchronizing the device)."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps, self.start, self.seconds = warmup, steps, None, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            sync(pl_module.device)
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup + self.steps:
            sync(pl_module.device)
            self.seconds = time.perf_counter() - self.start


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def config(family: str, args, run_dir: Path, extra: list[str]):
    overrides = [
        *FAMILIES[family]["overrides"],
        "dataset=mnist",
        f"paths.data_dir={args.data_dir}",
        f"dataset.batch_size={args.batch_size}",
        f"trainer.max_steps={args.warmup + args.steps}",
        "trainer.val_check_interval=100000",
        "callbacks.model_checkpoint.every_n_train_steps=100000",
        "~callbacks.image_grids",
        "optimized_metric=null",
        "trainer.limit_val_batches=0",
        f"trainer.accelerator={args.accelerator}",
        *([f"threads={args.threads}"] if getattr(args, "threads", None) else []),
        *extra,
    ]
    return compose_config("train", overrides, run_dir=run_dir)


def bench_genlab(family: str, args, extra: list[str]) -> float:
    timer = StepTimer(args.warmup, args.steps)
    with tempfile.TemporaryDirectory(prefix="genlab-bench-run-") as run_dir:  # the rate is the timer's
        train(config(family, args, Path(run_dir), extra), extra_callbacks=[timer])
    return args.steps * args.batch_size / timer.seconds


class MonitorClock:
    """Adds up the wall time spent inside the health monitor's per-step hook (what it costs the training loop)."""

    def __init__(self) -> None:
        from genlab.run.callbacks.health import HealthMonitor

        self.cls, self.seconds, self.original = HealthMonitor, 0.0, HealthMonitor.on_train_batch_end

    def __enter__(self) -> MonitorClock:
        clock, original = self, self.original

        def timed(monitor, *args, **kwargs):
            start = time.perf_counter()
            try:
                return original(monitor, *args, **kwargs)
            finally:
                clock.seconds += time.perf_counter() - start

        self.cls.on_train_batch_end = timed
        return self

    def __exit__(self, *exc) -> None:
        self.cls.on_train_batch_end = self.original


def health_overhead(family: str, args) -> dict:
    """Step time with the health monitor on over off (alternating runs, same process): median ratio - 1; and
    the share of the step time spent inside the monitor's hook (a direct, noise-free measure)."""
    import statistics

    timed = argparse.Namespace(**{**vars(args), "steps": args.health_steps})
    seconds: dict[bool, list[float]] = {True: [], False: []}
    shares = []
    for _ in range(args.health_rounds):
        for enabled in (False, True):
            with MonitorClock() as clock:
                rate = bench_genlab(family, timed, [f"callbacks.health.enabled={str(enabled).lower()}"])
            total = timed.steps * args.batch_size / rate  # timed steps only; the clock also saw warm-up steps
            seconds[enabled].append(total / timed.steps)
            if enabled:
                shares.append(clock.seconds / (total * (timed.steps + args.warmup) / timed.steps))
    on, off = statistics.median(seconds[True]), statistics.median(seconds[False])
    return {
        "step_s_on": on,
        "step_s_off": off,
        "overhead": on / off - 1,
        "hook_share": statistics.median(shares),
        "runs": seconds,
    }


def plain_step(family: str, model, opts):
    """One training step written by hand, doing the same work as the LightningModule's step."""
    if family == "gan":
        G, D = model.generator, model.discriminator
        d_loss_fn, g_loss_fn = LOSSES[model.config.loss]
        opt_g, opt_d = opts

        def step(real: torch.Tensor) -> None:
            with torch.no_grad():
                fake = G(torch.randn(real.size(0), model.latent_dim, device=real.device))
            loss_d = d_loss_fn(D(real), D(fake))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            loss_g = g_loss_fn(D(G(torch.randn(real.size(0), model.latent_dim, device=real.device))))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
    else:
        (opt,) = opts

        def step(x: torch.Tensor) -> None:
            x = torch.bernoulli(x)
            mu, logvar = model.encoder(x).chunk(2, dim=1)
            z = objective.reparameterize(mu, logvar)
            loss = (
                objective.bernoulli_nll(model.decoder(z), x) + objective.gaussian_kl(mu, logvar).sum(1)
            ).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return step


def fresh_model(family: str, args, device: torch.device, extra: list[str] | tuple = ()):
    with tempfile.TemporaryDirectory() as tmp:
        _, model = build(resolve_run(config(family, args, Path(tmp), list(extra))))
    model = model.to(device).train()
    if family == "gan":
        opts = [
            build_optimizer(model.generator.parameters(), model.optim_config),
            build_optimizer(model.discriminator.parameters(), model.optim_config),
        ]
    else:
        opts = [build_optimizer(model.parameters(), model.optim_config)]
    return model, plain_step(family, model, opts)


def timed(step, batches, warmup: int, steps: int, device: torch.device) -> float:
    it = iter(batches)
    for _ in range(warmup):
        step(next(it).to(device, non_blocking=True))
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step(next(it).to(device, non_blocking=True))
    sync(device)
    return time.perf_counter() - start


def mnist_tensor(
    root: str, size: int, value_range: tuple[float, float], device: torch.device
) -> torch.Tensor:
    x = datasets.MNIST(root, train=True, download=True).data.unsqueeze(1).float() / 255
    if size != 28:
        x = torch.nn.functional.interpolate(
            x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
    lo, hi = value_range
    return (x * (hi - lo) + lo).to(device)


def bench_plain(family: str, args, device: torch.device) -> float:
    spec = FAMILIES[family]
    data = mnist_tensor(args.data_dir, spec["size"], spec["value_range"], device)
    _, step = fresh_model(family, args, device)
    g = torch.Generator(device="cpu").manual_seed(0)

    def batches():
        while True:
            yield data[torch.randint(len(data), (args.batch_size,), generator=g).to(device)]

    return args.steps * args.batch_size / timed(step, batches(), args.warmup, args.steps, device)


def bench_pil(family: str, args, device: torch.device, size: int | None = None) -> float:
    spec = {**FAMILIES[family], "size": size or FAMILIES[family]["size"]}
    tfs = [transforms.Resize(spec["size"])] if spec["size"] != 28 else []
    tfs.append(transforms.ToTensor())
    if spec["value_range"] == (-1.0, 1.0):
        tfs.append(transforms.Normalize((0.5,), (0.5,)))
    ds = datasets.MNIST(args.data_dir, train=True, download=True, transform=transforms.Compose(tfs))
    loader = DataLoader(
        ds,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        drop_last=True,
        pin_memory=device.type == "cuda",
    )
    _, step = fresh_model(family, args, device, [f"dataset.image_size={spec['size']}"])
    return args.steps * args.batch_size / timed(step, (x for x, _ in loader), args.warmup, args.steps, device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", default="gan,vae")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument(
        "--workers", type=int, default=2, help="DataLoader workers of the PIL pipeline (pytorch/examples: 2)"
    )
    p.add_argument(
        "--data-dir", default=None, help="dir holding MNIST/raw (default: temp copy of ../shared/datasets)"
    )
    p.add_argument("--accelerator", default="auto", choices=["auto", "cpu", "gpu"])
    p.add_argument(
        "--switches", action="store_true", help="GPU: also time bf16-mixed, channels_last, compile"
    )
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads of genlab's runs (default: torch's)"
    )
    p.add_argument("--health-steps", type=int, default=100, help="timed steps per health on/off run")
    p.add_argument("--health-rounds", type=int, default=3, help="alternating on/off pairs")
    p.add_argument("--health-only", action="store_true", help="only measure the health monitor's cost")
    p.add_argument("--out", default=str(REPO / "outputs" / "bench.json"))
    args = p.parse_args()

    tmp = None
    if args.data_dir is None:
        src = REPO.parent / "shared" / "datasets"
        if not (src / "MNIST" / "raw").is_dir():
            raise SystemExit("bench: MNIST not found; pass --data-dir <dir holding MNIST/raw>")
        tmp = tempfile.mkdtemp(prefix="genlab-bench-")
        shutil.copytree(src / "MNIST", Path(tmp) / "MNIST")
        args.data_dir = tmp
    use_gpu = args.accelerator == "gpu" or (args.accelerator == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if use_gpu else "cpu")
    machine = (
        torch.cuda.get_device_name(0)
        if use_gpu
        else f"{platform.processor() or platform.machine()} CPU x{torch.get_num_threads()} threads"
    )
    print(
        f"bench on {machine}; batch {args.batch_size}; {args.steps} timed steps after {args.warmup} warm-up steps"
    )

    rows, health = [], {}
    for family in args.families.split(","):
        pl.seed_everything(0, verbose=False)
        health[family] = h = health_overhead(family, args)
        print(
            f"{family}: health monitor overhead {100 * h['overhead']:+.2f}% of step time "
            f"({1000 * h['step_s_on']:.2f} ms on vs {1000 * h['step_s_off']:.2f} ms off, medians of "
            f"{args.health_rounds} alternating runs of {args.health_steps} steps); time inside the monitor: "
            f"{100 * h['hook_share']:.3f}% of step time"
        )
        if args.health_only:
            continue
        row = {
            "family": family,
            "genlab": bench_genlab(family, args, []),
            "plain": bench_plain(family, args, device),
            "pil_loader": bench_pil(family, args, device),
        }
        row["genlab/plain"] = row["genlab"] / row["plain"]
        row["genlab/pil_loader"] = row["genlab"] / row["pil_loader"]
        if args.switches and use_gpu:
            for name, extra in {
                "bf16-mixed": ["trainer.precision=bf16-mixed"],
                "channels_last": ["model.channels_last=true"],
                "compile": ["model.compile=true"],
                "data on host": ["dataset.on_device=false"],
            }.items():
                row[f"genlab+{name}"] = bench_genlab(family, args, extra)
        rows.append(row)
        print(format_row(row))

    print(
        "\n| family | genlab img/s | plain PyTorch img/s | DataLoader+PIL img/s | genlab/plain | genlab/PIL |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['family']} | {r['genlab']:.0f} | {r['plain']:.0f} | {r['pil_loader']:.0f} | {r['genlab/plain']:.3f} | {r['genlab/pil_loader']:.2f} |"
        )
    record = {"machine": machine, "args": vars(args), "rows": rows, "health_overhead": health}
    write_text_atomic(args.out, json.dumps(record, indent=2))
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)


def format_row(r: dict) -> str:
    extras = " ".join(f"{k}={v:.0f}" for k, v in r.items() if k.startswith("genlab+"))
    return (
        f"{r['family']}: genlab {r['genlab']:.0f} img/s | plain {r['plain']:.0f} | pil-loader {r['pil_loader']:.0f} | "
        f"genlab/plain {r['genlab/plain']:.3f} | genlab/pil {r['genlab/pil_loader']:.2f} {extras}"
    )


if __name__ == "__main__":
    main()

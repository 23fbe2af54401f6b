"""GPU throughput, side by side in ONE process (`make bench` runs this when CUDA is available).

For the DCGAN at 32 and 64 px (MNIST resized) and the conv VAE (28 px MNIST), batch 128:

- the three pipelines of ``scripts/bench.py`` (genlab, the hand-written PyTorch loop on in-memory data, the
  pytorch/examples DataLoader+PIL pipeline feeding that loop), with what `trainer=gpu` gives by default;
- each speed switch alone, then all together, for genlab AND for the plain loop doing the same (autocast,
  channels_last tensors, torch.compile, data kept on the host), so every genlab/plain ratio compares
  like with like: bf16-mixed, channels_last, compile, on_device=false, fast = bf16 + channels_last + compile;
- the model FLOPs of one training step (all matmuls/convolutions, forward and backward, counted once with
  ``torch.utils.flop_counter.FlopCounterMode`` on the eager fp32 step) and the achieved TFLOP/s as a fraction
  of the GPU's DENSE peak (no structured sparsity) for the precision the row runs in: bf16 tensor cores for
  bf16-mixed; TF32 tensor cores for 32-true (cuDNN runs fp32 convolutions in TF32 by default).

Run on a GPU:  python scripts/bench_gpu.py            (about 10 minutes on an H100-class GPU; compile dominates)
On the CPU, only to check that it runs:  python scripts/bench_gpu.py --device cpu --tiny
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import sys
import tempfile
import types
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.flop_counter import FlopCounterMode

from genlab.models.optim import build_optimizer
from genlab.utils.atomic import write_text_atomic

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (scripts/bench.py: the pipelines, the plain loop and the timers)

REPO = Path(__file__).resolve().parents[1]

# What is benchmarked: bench.py's family plus the image size.
CASES = {
    "dcgan32": {"family": "gan", "size": 32},
    "dcgan64": {"family": "gan", "size": 64},
    "vae": {"family": "vae", "size": 28},
}
# Speed switches: genlab overrides, and what the plain loop does to match.
SWITCHES = {
    "default": [],
    "bf16-mixed": ["trainer.precision=bf16-mixed"],
    "channels_last": ["model.channels_last=true"],
    "compile": ["model.compile=true"],
    "on_device=false": ["dataset.on_device=false"],
    "fast": ["trainer.precision=bf16-mixed", "model.channels_last=true", "model.compile=true"],
}

# Dense peak TFLOP/s from NVIDIA's datasheets (the sparse figures they also print are twice these), per
# precision: fp32 on CUDA cores, tf32 and bf16 on tensor cores. Matched against torch.cuda.get_device_name.
PEAK_TFLOPS = [
    (r"H200 NVL", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5}),
    (r"H200", {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4}),
    (r"H100 NVL", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5}),
    (r"H100 PCIe", {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0}),
    (r"H100", {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4}),  # SXM: "NVIDIA H100 80GB HBM3"
    (r"A100", {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0}),
    (r"L40S", {"fp32": 91.6, "tf32": 183.0, "bf16": 362.1}),
    (r"L40\b", {"fp32": 90.5, "tf32": 90.5, "bf16": 181.0}),
    (r"\bL4\b", {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0}),
    (r"\bA10\b", {"fp32": 31.2, "tf32": 62.5, "bf16": 125.0}),
]


def dense_peak(device_name: str) -> dict[str, float] | None:
    """The dense peak TFLOP/s of a GPU by its name; None when it is not in the table."""
    for pattern, peak in PEAK_TFLOPS:
        if re.search(pattern, device_name):
            return peak
    return None


def peak_kind(switch: str) -> str:
    return "bf16" if "trainer.precision=bf16-mixed" in SWITCHES[switch] else "tf32"


# ---- the plain loop with the same switches --------------------------------------------------------
def plain_runner(case: dict, args, device: torch.device, switch: str):
    """bench.py's hand-written step on a model built with the switch's settings, run the way genlab runs it
    (autocast around the whole step, as Lightning does under manual optimization)."""
    extra = [*SWITCHES[switch], f"dataset.image_size={case['size']}"]
    model, step = bench.fresh_model(case["family"], args, device, extra)
    if case["family"] == "vae" and "model.compile=true" in extra:  # the VAE keeps its compiled nets private
        shim = types.SimpleNamespace(
            encoder=torch.compile(model.encoder), decoder=torch.compile(model.decoder)
        )
        step = bench.plain_step("vae", shim, [build_optimizer(model.parameters(), model.optim_config)])
    bf16 = "trainer.precision=bf16-mixed" in extra

    def run(x: torch.Tensor) -> None:
        ctx = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            step(x)

    return model, run


def plain_rate(case: dict, args, device: torch.device, switch: str) -> float:
    spec = bench.FAMILIES[case["family"]]
    on_host = "dataset.on_device=false" in SWITCHES[switch]
    data = bench.mnist_tensor(args.data_dir, case["size"], spec["value_range"], torch.device("cpu"))
    if "model.channels_last=true" in SWITCHES[switch]:
        data = data.contiguous(memory_format=torch.channels_last)
    if not on_host:
        data = data.to(device)
    _, run = plain_runner(case, args, device, switch)
    g = torch.Generator().manual_seed(0)

    def batches():
        while True:
            yield data[torch.randint(len(data), (args.batch_size,), generator=g).to(data.device)]

    return args.steps * args.batch_size / bench.timed(run, batches(), args.warmup, args.steps, device)


def step_flops(case: dict, args, device: torch.device) -> int:
    """FLOPs of one training step (forward + backward of every network it runs), eager fp32."""
    _, run = plain_runner(case, args, device, "default")
    x = torch.rand(args.batch_size, 1, case["size"], case["size"], device=device)
    run(x)  # lazy init (cuDNN, optimizer state) outside the count
    with FlopCounterMode(display=False) as counter:
        run(x)
    return counter.get_total_flops()


# ---- the table --------------------------------------------------------------------------------------
def measure(case_name: str, args, device: torch.device, peak: dict | None) -> list[dict]:
    case = CASES[case_name]
    family, extra_size = case["family"], [f"dataset.image_size={case['size']}"]
    flops = step_flops(case, args, device)
    rows = []
    for switch in args.switches:
        if switch == "compile" or switch == "fast":
            if device.type == "cpu" and not args.compile_on_cpu:
                continue
        pl.seed_everything(0, verbose=False)
        row = {"case": case_name, "switch": switch, "flops_per_step": flops}
        row["genlab"] = bench.bench_genlab(family, args, [*SWITCHES[switch], *extra_size])
        row["plain"] = plain_rate(case, args, device, switch)
        row["genlab/plain"] = row["genlab"] / row["plain"]
        if switch == "default" and not args.no_pil:
            row["pil_loader"] = bench.bench_pil(family, args, device, size=case["size"])
            row["genlab/pil_loader"] = row["genlab"] / row["pil_loader"]
        row["genlab_tflops"] = flops * row["genlab"] / args.batch_size / 1e12
        kind = peak_kind(switch)
        row["peak"] = f"{kind} dense {peak[kind]:.0f} TFLOP/s" if peak else None
        row["fraction_of_peak"] = row["genlab_tflops"] / peak[kind] if peak else None
        print(format_row(row), flush=True)
        rows.append(row)
    return rows


def format_row(r: dict) -> str:
    pil = (
        f" | PIL {r['pil_loader']:.0f} (genlab/PIL {r['genlab/pil_loader']:.2f})" if "pil_loader" in r else ""
    )
    frac = (
        f" | {100 * r['fraction_of_peak']:.1f}% of {r['peak']}" if r["fraction_of_peak"] is not None else ""
    )
    return (
        f"{r['case']:8s} {r['switch']:16s} genlab {r['genlab']:8.0f} img/s | plain {r['plain']:8.0f} "
        f"(genlab/plain {r['genlab/plain']:.3f}){pil} | {r['genlab_tflops']:.2f} TFLOP/s{frac}"
    )


def markdown(rows: list[dict], machine: str) -> str:
    lines = [
        f"{machine}; images/s at batch {rows[0]['batch_size'] if rows else '?'}; "
        "fraction of the dense peak of the row's precision (bf16 for bf16-mixed, TF32 for 32-true)",
        "",
        "| model | switch | genlab img/s | plain img/s | genlab/plain | DataLoader+PIL img/s | genlab/PIL "
        "| GFLOP/step | TFLOP/s | of dense peak |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        pil = f"{r['pil_loader']:.0f} | {r['genlab/pil_loader']:.2f}" if "pil_loader" in r else "- | -"
        frac = (
            f"{100 * r['fraction_of_peak']:.1f}% ({r['peak']})" if r["fraction_of_peak"] is not None else "-"
        )
        lines.append(
            f"| {r['case']} | {r['switch']} | {r['genlab']:.0f} | {r['plain']:.0f} | {r['genlab/plain']:.3f} | "
            f"{pil} | {r['flops_per_step'] / 1e9:.1f} | {r['genlab_tflops']:.2f} | {frac} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}")
    p.add_argument("--switches", default=",".join(SWITCHES), help=f"comma list of {', '.join(SWITCHES)}")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20, help="untimed steps first (torch.compile compiles here)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=4, help="DataLoader workers of the PIL pipeline")
    p.add_argument(
        "--data-dir", default=None, help="dir holding MNIST/raw (default: a temp copy of ../shared)"
    )
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="cpu: only to check it runs")
    p.add_argument("--tiny", action="store_true", help="2 timed steps, batch 8, no PIL: a check that it runs")
    p.add_argument("--no-pil", action="store_true", help="skip the DataLoader+PIL pipeline")
    p.add_argument("--compile-on-cpu", action="store_true", help="with --device cpu, also time compile")
    p.add_argument("--if-cuda", action="store_true", help="exit quietly when there is no CUDA GPU")
    p.add_argument("--out", default=str(REPO / "outputs" / "bench_gpu.json"))
    args = p.parse_args(argv)
    if args.tiny:
        args.steps, args.warmup, args.batch_size, args.no_pil = 2, 1, 8, True
    args.cases = [c for c in args.cases.split(",") if c]
    args.switches = [s for s in args.switches.split(",") if s]
    unknown = [c for c in args.cases if c not in CASES] + [s for s in args.switches if s not in SWITCHES]
    if unknown:
        p.error(f"unknown case or switch: {', '.join(unknown)}")
    args.accelerator = "gpu" if args.device == "cuda" else "cpu"  # what bench.config passes to the trainer
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        if args.if_cuda:
            print("bench_gpu: no CUDA GPU here, nothing to measure")
            return 0
        raise SystemExit(
            "bench_gpu: no CUDA GPU (torch.cuda.is_available() is False); --device cpu only checks it runs"
        )
    tmp = None
    if args.data_dir is None:
        src = REPO.parent / "shared" / "datasets"
        tmp = tempfile.mkdtemp(prefix="genlab-bench-gpu-")
        if (src / "MNIST" / "raw").is_dir():
            shutil.copytree(src / "MNIST", Path(tmp) / "MNIST")
        args.data_dir = tmp  # torchvision downloads MNIST here when no copy was found
    device = torch.device(args.device)
    machine = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU (a check that it runs)"
    peak = dense_peak(machine) if device.type == "cuda" else None
    print(f"bench_gpu on {machine}; batch {args.batch_size}; {args.steps} timed steps after {args.warmup}")
    if device.type == "cuda" and peak is None:
        print(
            f"bench_gpu: no dense peak known for {machine!r}; add it to PEAK_TFLOPS for the fraction of peak"
        )
    rows = []
    try:
        for case in args.cases:
            rows += measure(case, args, device, peak)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    for r in rows:
        r["batch_size"] = args.batch_size
    table = markdown(rows, machine)
    print("\n" + table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k != "data_dir"}
    write_text_atomic(
        out, json.dumps({"machine": machine, "peak_tflops": peak, "args": settings, "rows": rows}, indent=2)
    )
    write_text_atomic(out.with_suffix(".md"), table + "\n")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

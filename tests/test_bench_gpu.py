"""scripts/bench_gpu.py: the dense peak table, FLOPs per step, and a tiny run on the CPU (the GPU figures need a
GPU: `python scripts/bench_gpu.py` there)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def bench_gpu():
    sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPTS / "bench_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("name", "bf16"),
    [
        ("NVIDIA H200", 989.4),
        ("NVIDIA H200 NVL", 835.5),
        ("NVIDIA H100 80GB HBM3", 989.4),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA A100 80GB PCIe", 312.0),
        ("NVIDIA L40S", 362.1),
        ("NVIDIA L4", 121.0),
        ("NVIDIA A10", 125.0),
        ("NVIDIA GeForce RTX 4090", None),
    ],
)
def test_dense_peak_by_device_name(bench_gpu, name, bf16):
    peak = bench_gpu.dense_peak(name)
    assert (peak["bf16"] if peak else None) == bf16
    if peak:
        assert peak["fp32"] < peak["tf32"] <= peak["bf16"]


def test_bench_runs_tiny_on_the_cpu(bench_gpu, real_data_dir, tmp_path, one_thread):
    out = tmp_path / "bench.json"
    code = bench_gpu.main(
        [
            "--device=cpu",
            "--tiny",
            "--cases=vae",
            "--switches=default,channels_last",
            f"--data-dir={real_data_dir}",
            f"--out={out}",
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert [(r["case"], r["switch"]) for r in report["rows"]] == [
        ("vae", "default"),
        ("vae", "channels_last"),
    ]
    for row in report["rows"]:
        assert row["flops_per_step"] > 1e6  # a conv VAE step at batch 8: hundreds of MFLOPs
        assert all(math.isfinite(row[k]) and row[k] > 0 for k in ("genlab", "plain", "genlab/plain"))
        assert row["fraction_of_peak"] is None  # no peak for a CPU
    assert "| vae | default |" in out.with_suffix(".md").read_text()


def test_without_cuda_the_gpu_bench_steps_aside(bench_gpu, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert bench_gpu.main(["--if-cuda"]) == 0
    assert "no CUDA GPU" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no CUDA GPU"):
        bench_gpu.main([])


def test_flops_of_a_dcgan_step_grow_with_the_image_size(bench_gpu, real_data_dir, one_thread):
    args = bench_gpu.parse_args(["--device=cpu", "--tiny", f"--data-dir={real_data_dir}"])
    small = bench_gpu.step_flops(bench_gpu.CASES["dcgan32"], args, torch.device("cpu"))
    large = bench_gpu.step_flops(bench_gpu.CASES["dcgan64"], args, torch.device("cpu"))
    assert 3 < large / small < 6  # 4x the pixels, plus one more layer in each net

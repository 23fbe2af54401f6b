"""The GPU tier (`make test-gpu`, `pytest -m gpu`): the paths users train on, on one CUDA GPU (two for DDP).

Every test skips with the reason when this machine has no CUDA GPU (lightning-hydra-template's ``RunIf``).
Covered for the GAN (manual optimization, gradient clipping, R1) and the VAE: 32-true, bf16-mixed and 16-mixed
(the GAN under the grad scaler), channels_last, compile, dataset.on_device true/false, all speed switches at
once, resume on the GPU, `genlab sample`/`eval` with device=cuda (Inception from both file formats), a
GPU-trained checkpoint sampled and evaluated on the CPU, and DDP on two GPUs (torchrun and Lightning launchers).
Tiny nets and 10 steps: the tier takes a few minutes on one GPU, most of it torch.compile.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from inception_files import fidelity_state_dict, scripted_detector
from runs_util import run_cli, run_train, tensorboard
from subprocess_util import free_port, genlab_env

from genlab.checkpoint import load_run
from genlab.cli import main
from genlab.commands.compose import compose_config
from genlab.metrics.features import INCEPTION_FILE, INCEPTION_SCRIPT_FILE
from genlab.run.train import train

HAS_GPU = torch.cuda.is_available()
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
pytestmark = [pytest.mark.gpu, needs_gpu]


def needs(condition: bool, reason: str):
    return pytest.mark.skipif(not condition, reason=reason)


BF16 = HAS_GPU and torch.cuda.is_bf16_supported()
COMPILE = importlib.util.find_spec("triton") is not None

FAMILIES = {
    "gan": [
        "model=gan",
        "model.net=dcgan",
        "model.g_width=16",
        "model.d_width=16",
        "model.latent_dim=32",
        "model.grad_clip=1.0",  # clipped after the scaler unscales (16-mixed)
        "model.r1_gamma=0.1",  # a double backward under autocast
    ],
    "vae": [
        "model=vae",
        "model.net=conv",
        "model.channels=16",
        "model.latent_dim=8",
        "model.iw_samples=4",
        "model.iw_examples=64",
        "model.grad_clip=1.0",
    ],
}
STEPS = 10


def overrides(family: str, *extra: str, trainer: str = "gpu") -> list[str]:
    return [
        "dataset=shapes",
        "dataset.n_train=2048",
        "dataset.n_test=256",
        "dataset.batch_size=64",
        *FAMILIES[family],
        f"trainer={trainer}",
        f"trainer.max_steps={STEPS}",
        "trainer.val_check_interval=5",
        "trainer.limit_val_batches=2",
        "trainer.log_every_n_steps=1",
        "callbacks.model_checkpoint.every_n_train_steps=5",
        "threads=2",
        *extra,
    ]


class Probe(pl.Callback):
    """What the first training batch ran on: model and batch devices, where the dataset lives, memory format."""

    seen: dict | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.seen is not None:
            return
        # a conv whose weight has a real layout (one input channel is contiguous in both formats)
        conv = next(m for m in pl_module.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
        self.seen = {
            "model": pl_module.device.type,
            "batch": batch[0].device.type,
            "data": trainer.train_dataloader.data.device.type,
            "channels_last": conv.weight.is_contiguous(memory_format=torch.channels_last),
            "precision": trainer.precision,
        }


def fit(run_dir: Path, family: str, *extra: str) -> tuple[dict, dict]:
    probe = Probe()
    metrics = train(
        compose_config("train", overrides(family, *extra), run_dir=run_dir), extra_callbacks=[probe]
    )
    return metrics, probe.seen


def finite_weights(ckpt: Path) -> dict:
    data = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert all(torch.isfinite(v).all() for v in data["state_dict"].values() if v.is_floating_point())
    return data


def check_finished(run_dir: Path, steps: int = STEPS) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["global_step"] == steps
    return finite_weights(run_dir / "checkpoints" / "last.ckpt")


@pytest.mark.parametrize("family", ["gan", "vae"])
@pytest.mark.parametrize(
    "precision",
    ["32-true", pytest.param("bf16-mixed", marks=needs(BF16, "needs a CUDA GPU with bf16")), "16-mixed"],
)
def test_trains_on_one_gpu(tmp_path, family, precision):
    run = tmp_path / "run"
    metrics, seen = fit(run, family, f"trainer.precision={precision}")
    assert seen == {
        "model": "cuda",
        "batch": "cuda",
        "data": "cuda",  # on_device=auto: a small dataset lives on the GPU
        "channels_last": False,
        "precision": precision,
    }
    ckpt = check_finished(run)
    if precision == "16-mixed":  # the grad scaler ran and its state is checkpointed (resume keeps it)
        assert ckpt["MixedPrecision"]["scale"] > 0
    if family == "gan":  # measured after unscaling: true norms (some steps the scaler skips are not finite)
        norms = [e.value for e in tensorboard(run).Scalars("train/grad_norm_d")]
        finite = [v for v in norms if math.isfinite(v)]
        assert len(finite) >= len(norms) // 2 and max(finite) < 1e3, norms
    else:
        assert math.isfinite(metrics["val/neg_elbo"])


SWITCHES = {
    "channels_last": ["model.channels_last=true"],
    "compile": ["model.compile=true"],
    "on_device_true": ["dataset.on_device=true"],
    "on_device_false": ["dataset.on_device=false"],
}


@pytest.mark.parametrize("family", ["gan", "vae"])
@pytest.mark.parametrize("switch", list(SWITCHES))
def test_speed_switch(tmp_path, family, switch):
    if switch == "compile" and not COMPILE:
        pytest.skip("torch.compile needs triton, not installed")
    run = tmp_path / "run"
    _, seen = fit(run, family, *SWITCHES[switch])
    assert seen["model"] == seen["batch"] == "cuda"
    assert seen["channels_last"] == (switch == "channels_last")
    assert seen["data"] == ("cpu" if switch == "on_device_false" else "cuda")
    check_finished(run)
    # a compiled model's checkpoint has the plain state dict keys: it loads and samples eagerly
    loaded = load_run(run / "checkpoints" / "last.ckpt", device="cuda")
    assert torch.isfinite(loaded.model.sample(8)).all()


@pytest.fixture(scope="module")
def fast_runs(tmp_path_factory) -> dict[str, Path]:
    """Each family trained with every speed switch on (bf16 where the GPU has it)."""
    precision = "bf16-mixed" if BF16 else "16-mixed"
    switches = ["model.channels_last=true", f"trainer.precision={precision}", "dataset.on_device=true"]
    if COMPILE:
        switches.append("model.compile=true")
    runs = {}
    for family in FAMILIES:
        run = tmp_path_factory.mktemp(family) / "run"
        _, seen = fit(run, family, *switches)
        assert seen["channels_last"] and seen["data"] == "cuda"
        check_finished(run)
        runs[family] = run
    return runs


def test_all_speed_switches_together(fast_runs):
    assert set(fast_runs) == {"gan", "vae"}


def test_sample_on_cuda_matches_the_cpu(fast_runs, tmp_path, capsys):
    """`genlab sample device=cuda`, and the same GPU-trained checkpoint on the CPU: the same samples."""
    for family, run in fast_runs.items():
        ckpt = run / "checkpoints" / "last.ckpt"
        arrays = {}
        for device in ("cuda", "cpu"):
            out = tmp_path / f"{family}-{device}.npy"
            code, _, err = run_cli(capsys, "sample", f"ckpt={ckpt}", "n=32", f"out={out}", f"device={device}")
            assert code == 0, err
            arrays[device] = np.load(out)
        assert arrays["cuda"].shape == (32, 1, 32, 32)
        np.testing.assert_allclose(arrays["cuda"], arrays["cpu"], atol=2e-2)  # cudnn may use TF32


@pytest.fixture(scope="module")
def inception_files(tmp_path_factory) -> dict[str, Path]:
    where = tmp_path_factory.mktemp("inception")
    return {
        "torch-fidelity": fidelity_state_dict(where / INCEPTION_FILE),
        "torchscript": scripted_detector(where / INCEPTION_SCRIPT_FILE),
    }


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_eval_on_cuda_and_on_the_cpu(fast_runs, inception_files, tmp_path, capsys, device):
    """`genlab eval eval.device=...` on GPU-trained checkpoints: Inception metrics from both file formats for
    the GAN, the likelihood bounds for the VAE."""
    reports = {}
    for name, weights in inception_files.items():
        out = tmp_path / f"gan-{name}.json"
        code, _, err = run_cli(
            capsys,
            "eval",
            f"ckpt={fast_runs['gan'] / 'checkpoints' / 'last.ckpt'}",
            "eval.features=inception",
            f"eval.inception_weights={weights}",
            "eval.n_samples=200",
            f"eval.device={device}",
            f"out={out}",
        )
        assert code == 0, err
        reports[name] = json.loads(out.read_text())["metrics"]
        assert all(math.isfinite(reports[name][k]) for k in ("fid", "kid", "is", "precision"))
    out = tmp_path / "vae.json"
    code, _, err = run_cli(
        capsys,
        "eval",
        f"ckpt={fast_runs['vae'] / 'checkpoints' / 'last.ckpt'}",
        "eval.metrics=likelihood",
        "eval.n_samples=64",
        "eval.iw_samples=4",
        f"eval.device={device}",
        f"out={out}",
    )
    assert code == 0, err
    vae = json.loads(out.read_text())["metrics"]
    assert all(math.isfinite(v) for v in vae.values() if isinstance(v, float))


@pytest.mark.parametrize(
    ("family", "precision"),
    [("gan", "16-mixed"), pytest.param("vae", "bf16-mixed", marks=needs(BF16, "needs a CUDA GPU with bf16"))],
)
def test_resume_on_gpu(tmp_path, capsys, family, precision):
    run = tmp_path / "run"  # through the CLI: resume= replays the overrides it records
    run_train(run, *overrides(family, f"trainer.precision={precision}"))
    check_finished(run)
    code = main(["train", f"resume={run}", f"trainer.max_steps={2 * STEPS}"])
    assert code in (None, 0)
    ckpt = check_finished(run, steps=2 * STEPS)
    if precision == "16-mixed":
        assert ckpt["MixedPrecision"]["scale"] > 0
    steps = [e.step for e in tensorboard(run).Scalars("train/loss_d" if family == "gan" else "train/loss")]
    assert max(steps) >= 2 * STEPS - 1 and len(steps) == len(set(steps))  # one TensorBoard run, continued


@needs(torch.cuda.device_count() >= 2, "needs two CUDA GPUs")
@pytest.mark.parametrize("launcher", ["torchrun", "lightning"])
def test_ddp_on_two_gpus(tmp_path, launcher):
    """`trainer=ddp` on two GPUs, launched by torchrun (one `genlab train` per GPU) or by Lightning itself."""
    run = tmp_path / "run"
    torchrun = ["-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}"]
    command = [
        sys.executable,
        *(torchrun if launcher == "torchrun" else []),
        "-m",
        "genlab",
        "train",
        f"hydra.run.dir={run}",
        *overrides("gan", "trainer.devices=2", trainer="ddp"),
    ]
    res = subprocess.run(command, cwd=tmp_path, env=genlab_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    check_finished(run)

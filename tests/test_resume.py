"""Resume continues the SAME run: same dir, one continuous TensorBoard run, identical training state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from runs_util import RING_GAN, SHAPES_VAE, run_train, short, tensorboard
from stopper import interrupt_at

from genlab.cli import main

REPO = Path(__file__).resolve().parents[1]


def genlab_train(run_dir: Path, *overrides: str) -> list[str]:
    """The command line of a ring-GAN run in its own process (to be killed)."""
    return [sys.executable, "-m", "genlab", "train", f"hydra.run.dir={run_dir}", *RING_GAN, *overrides]


def final_state(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


@pytest.mark.parametrize(
    ("family", "signum"),
    [
        (RING_GAN + ["model.ema=true", "optimizer.scheduler=linear"], signal.SIGTERM),
        (SHAPES_VAE, signal.SIGINT),
    ],
    ids=["gan-sigterm", "vae-sigint"],
)
def test_resumed_run_equals_uninterrupted_run(tmp_path, family, monkeypatch, signum):
    """Interrupt at step 33 (of 60; SIGTERM as a cluster's preemption, SIGINT as Ctrl-C) and resume: the
    interrupted run saved last.ckpt at step 33 and says so; parameters, optimizer moments, EMA, fixed noise and
    the data order then continue exactly, so the result equals a run that was never stopped."""
    common = [*family, "trainer.deterministic=true", *short(60, 30)]
    run_train(tmp_path / "straight", *common)
    with monkeypatch.context() as patch:
        interrupt_at(patch, 33, signum)
        with pytest.raises(SystemExit) as stop:
            main(["train", f"hydra.run.dir={tmp_path / 'split'}", *common])
    assert stop.value.code == 128 + signum
    assert final_state(tmp_path / "split")["global_step"] == 33
    metrics = json.loads((tmp_path / "split" / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["global_step"] == 33
    assert json.loads((tmp_path / "split" / "status.json").read_text())["status"] == "interrupted"
    run_train(tmp_path / "ignored", f"resume={tmp_path / 'split'}")
    assert not (tmp_path / "ignored").exists()  # resume writes into the original run dir
    a, b = final_state(tmp_path / "straight"), final_state(tmp_path / "split")
    assert b["global_step"] == 60
    for key, value in a["state_dict"].items():
        if key.startswith(
            "recon_"
        ):  # the VAE's display batch for the reconstruction grid, not training state
            continue
        assert torch.equal(value, b["state_dict"][key]), key
    for sa, sb in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        for pid, state in sa["state"].items():
            for name, value in state.items():  # exp_avg, exp_avg_sq, step
                assert torch.equal(value, sb["state"][pid][name]), (pid, name)
    assert a["lr_schedulers"] == b["lr_schedulers"]
    steps = [
        e.step
        for e in tensorboard(tmp_path / "split").Scalars(
            "train/loss" if "model=vae" in family else "train/loss_d"
        )
    ]
    assert steps == sorted(set(steps))  # one continuous curve, no duplicates


def test_ckpt_path_inside_a_run_continues_that_run(tmp_path):
    run_train(tmp_path / "run", *RING_GAN, *short(20, 10))
    run_train(
        tmp_path / "elsewhere",
        f"ckpt_path={tmp_path / 'run' / 'checkpoints' / 'step0000010.ckpt'}",
        "trainer.max_steps=30",
    )
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["global_step"] == 30
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.slow
def test_sigkill_then_resume(tmp_path):
    """Kill a training process mid-run (SIGKILL), resume it: the run finishes with the right number of steps,
    one continuous set of curves, and no work lost beyond the last checkpoint."""
    run_dir = tmp_path / "run"
    args = genlab_train(run_dir, *short(3000, 100), "trainer.log_every_n_steps=10")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while (
        time.time() < deadline
    ):  # freeze the process, look at the disk, kill only when points to purge exist
        time.sleep(0.5)
        if not last.is_file():
            continue
        proc.send_signal(signal.SIGSTOP)
        seen = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
        acc = tensorboard(run_dir)
        if seen >= 300 and "train/loss_d" in acc.Tags()["scalars"]:
            if max(e.step for e in acc.Scalars("train/loss_d")) > seen:
                break
        proc.send_signal(signal.SIGCONT)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    assert 300 <= saved < 3000, saved
    assert max(e.step for e in tensorboard(run_dir).Scalars("train/loss_d")) > saved  # points to purge exist

    res = subprocess.run(
        [sys.executable, "-m", "genlab", "train", f"resume={run_dir}"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads((run_dir / "metrics.json").read_text())["global_step"] == 3000
    assert [p.name for p in (run_dir / "tensorboard").iterdir() if p.is_dir()] == []  # no new version dir
    steps = [e.step for e in tensorboard(run_dir).Scalars("train/loss_d")]
    assert steps == sorted(set(steps)), "duplicate or out-of-order steps after resume"
    gaps = {b - a for a, b in zip(steps, steps[1:], strict=False)}
    assert gaps == {10}, f"gap in the curve: {sorted(gaps)}"
    assert steps[-1] >= 2990


@pytest.mark.slow
def test_sigkill_right_after_a_checkpoint_keeps_every_logged_step_before_it(tmp_path):
    """Loggers are flushed before each checkpoint is written: killed just after a checkpoint appears, the
    TensorBoard file holds every logged step below that checkpoint's step (repeated over several kills)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for attempt in range(4):
        run_dir = tmp_path / f"run{attempt}"
        args = genlab_train(run_dir, *short(100000, 50), "trainer.log_every_n_steps=5", "threads=1")
        proc = subprocess.Popen(
            args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path
        )
        target = run_dir / "checkpoints" / f"step{(attempt + 2) * 50:07d}.ckpt"
        deadline = time.time() + 120
        while not target.exists() and time.time() < deadline:
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert target.exists(), "the run did not reach its checkpoint in time"
        step = torch.load(target, map_location="cpu", weights_only=True)["global_step"]
        logged = {e.step for e in tensorboard(run_dir).Scalars("train/loss_d")}
        expected = {s for s in range(4, step - 1, 5)}  # Lightning logs step k's scalars at k - 1
        assert expected <= logged, sorted(expected - logged)

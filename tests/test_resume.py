"""Resume continues the SAME run: same dir, one continuous TensorBoard run, identical training state."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from runs_util import (
    RING_GAN,
    SHAPES_VAE,
    rewritten_checkpoint,
    run_cli,
    run_train,
    short,
    tensorboard,
    tree,
)
from stopper import interrupt_at

from genlab.checkpoint import STATE_DIGEST, load_run
from genlab.cli import main
from genlab.run.callbacks import checkpoint_io
from genlab.utils.atomic import write_atomic
from genlab.utils.errors import CheckpointError

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


# ---- checkpoints a resume cannot or may continue ---------------------------------------------------
@pytest.fixture(scope="module")
def ring_run(tmp_path_factory) -> Path:
    """A tiny finished ring-GAN run: checkpoints at steps 2 and 4."""
    run = tmp_path_factory.mktemp("ring") / "run"
    run_train(run, *RING_GAN, *short(4, 2), "threads=1")
    return run


def copied_run(ring_run: Path, where: Path, change=None, reseal: bool = True) -> Path:
    """A copy of the run whose last.ckpt is changed by ``change`` (see ``rewritten_checkpoint``)."""
    run = where / "copy"
    shutil.copytree(ring_run, run)
    if change is not None:
        last = run / "checkpoints" / "last.ckpt"
        rewritten_checkpoint(last, last, change, reseal)
    return run


def refused_resume(capsys, run: Path, *extra: str) -> str:
    """``genlab train ckpt_path=<run>/checkpoints/last.ckpt``: exit 2, one line, nothing in the run changed."""
    before = tree(run)
    code, _, err = run_cli(capsys, "train", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", *extra)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert tree(run) == before
    return lines[0]


def renamed_callback_key(d: dict) -> None:
    keys = d["genlab"]["config"]["callbacks"]["model_checkpoint"]
    keys["every_n_stepz"] = keys.pop("every_n_train_steps")


def foreign_logger(d: dict) -> None:
    d["genlab"]["config"]["logger"]["neptune"] = {"project": "x"}


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (renamed_callback_key, "callbacks.model_checkpoint.every_n_stepz is no longer a genlab key"),
        (foreign_logger, "logger.neptune is not a known logger"),
    ],
    ids=["renamed-callback-key", "foreign-logger"],
)
def test_a_checkpoint_whose_run_settings_no_longer_validate_samples_and_evaluates_but_does_not_resume(
    ring_run, tmp_path, capsys, change, needle
):
    """Sampling and evaluation need the model part of the record only; a resume restores the callbacks' and
    loggers' state, so it says in one line which stored setting this genlab cannot restore."""
    run = copied_run(ring_run, tmp_path, change)
    ckpt = run / "checkpoints" / "last.ckpt"
    code, _, err = run_cli(capsys, "sample", f"ckpt={ckpt}", "n=8", f"out={tmp_path / 'x.npy'}")
    assert code == 0, err
    code, _, err = run_cli(capsys, "eval", f"ckpt={ckpt}", "eval.n_samples=50", f"out={tmp_path / 'e.json'}")
    assert code == 0, err
    line = refused_resume(capsys, run, "trainer.max_steps=6")
    assert (
        "cannot be resumed by this genlab" in line
        and needle in line
        and "still samples and evaluates" in line
    )


def flip_an_optimizer_bit(d: dict) -> None:
    moment = next(iter(d["optimizer_states"][0]["state"].values()))["exp_avg"]
    moment.view(-1).view(torch.int32)[0] ^= 1 << 20


def test_a_bit_flip_in_the_optimizer_state_is_refused_on_resume(ring_run, tmp_path, capsys):
    run = copied_run(ring_run, tmp_path, flip_an_optimizer_bit, reseal=False)
    ckpt = run / "checkpoints" / "last.ckpt"
    assert load_run(ckpt).global_step == 4  # the weights are intact: it still samples
    line = refused_resume(capsys, run, "trainer.max_steps=6")
    assert "optimizer, scheduler or loop state does not match the checksum" in line
    with pytest.raises(
        CheckpointError, match="optimizer, scheduler or loop state"
    ):  # Lightning's own restore
        checkpoint_io.AtomicCheckpointIO().load_checkpoint(ckpt)


def test_a_checkpoint_without_a_state_digest_resumes_and_says_so(ring_run, tmp_path):
    """Checkpoints of an older genlab carry the weights digest only: they resume, with a log line."""
    run = copied_run(ring_run, tmp_path, lambda d: d["genlab"].pop(STATE_DIGEST), reseal=False)
    run_train(tmp_path / "unused", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "trainer.max_steps=6")
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 6
    assert "did not checksum the training state" in (run / "train.log").read_text()


def test_a_resume_cannot_change_the_model_family(ring_run, tmp_path, capsys):
    ckpt = tmp_path / "gan.ckpt"  # outside its run directory: no overrides replayed
    shutil.copyfile(ring_run / "checkpoints" / "last.ckpt", ckpt)
    code, _, err = run_cli(
        capsys,
        "train",
        f"hydra.run.dir={tmp_path / 'run'}",
        "dataset=ring",
        "model=vae",
        "model.net=mlp",
        "model.likelihood=gaussian",
        "model.binarize=false",
        f"ckpt_path={ckpt}",
    )
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "is a gan run and a run cannot change its model family (model=vae asked)" in err
    assert not (tmp_path / "run").exists()


def test_a_full_disk_during_a_save_is_one_line_and_keeps_the_last_good_checkpoint(
    tmp_path, capsys, monkeypatch
):
    """The saves of step 2 (step0000002.ckpt, last.ckpt) succeed, the disk is full at step 4's."""
    saves = []
    real_save = checkpoint_io.save_atomic

    def full_disk(checkpoint, path):
        saves.append(path)
        if len(saves) <= 2:
            return real_save(checkpoint, path)

        def write(f):
            f.write(b"the first bytes")
            raise OSError(errno.ENOSPC, "No space left on device")

        write_atomic(path, write)

    monkeypatch.setattr(checkpoint_io, "save_atomic", full_disk)
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", f"hydra.run.dir={run}", *RING_GAN, *short(4, 2), "threads=1")
    assert code == 2 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("genlab train: error: cannot write checkpoint")
    assert "No space left on device" in err and "the checkpoints written before it are kept" in err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt", "step0000002.ckpt"]
    assert load_run(run / "checkpoints" / "last.ckpt").global_step == 2
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed" and "No space left on device" in status["error"]


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

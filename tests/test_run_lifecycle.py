"""A run directory never loses, hides or mixes work: moved runs, locks, rewinds, changed settings on resume,
the divergence guard, stale temp files and file modes (tiny ring-GAN runs through the CLI)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from builders import build
from runs_util import RING_GAN, run_cli, run_train, short
from trainers import bare_trainer

from genlab.config.spec import DataSpec
from genlab.data.loader import TensorBatches
from genlab.models.gan import GAN
from genlab.run.callbacks.checkpoint import Checkpoint, CheckpointConfig
from genlab.run.callbacks.lifecycle import DivergenceGuard
from genlab.utils.atomic import output_mode
from genlab.utils.errors import TrainingDiverged
from genlab.utils.rundir import RunLock

TINY = [*RING_GAN, "threads=1"]


def step_of(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


def test_a_moved_run_resumes_and_keeps_writing_last_ckpt(tmp_path):
    run_train(tmp_path / "run", *TINY, *short(20, 10))
    moved = tmp_path / "elsewhere" / "run"
    shutil.copytree(tmp_path / "run", moved)
    shutil.rmtree(tmp_path / "run")
    run_train(tmp_path / "ignored", f"resume={moved}", "trainer.max_steps=40")
    ckpts = moved / "checkpoints"
    assert step_of(ckpts / "last.ckpt") == 40
    assert sorted(p.name for p in ckpts.glob("*.ckpt")) == [
        "last.ckpt",
        "step0000010.ckpt",
        "step0000020.ckpt",
        "step0000030.ckpt",
        "step0000040.ckpt",
    ]  # never last-v1.ckpt or step*-v1.ckpt
    run_train(tmp_path / "ignored", f"resume={moved}", "trainer.max_steps=50")  # and again
    assert step_of(ckpts / "last.ckpt") == 50


def test_a_second_run_into_a_locked_directory_is_refused_and_changes_nothing(tmp_path, capsys):
    run_train(tmp_path / "run", *TINY, *short(10, 10))
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*")}
    with RunLock(tmp_path / "run"):
        code, _, err = run_cli(capsys, "train", f"hydra.run.dir={tmp_path / 'run'}", *TINY, *short(10, 10))
        code_resume, _, err_resume = run_cli(capsys, "train", f"resume={tmp_path / 'run'}")
    for c, e in ((code, err), (code_resume, err_resume)):
        lines = e.strip().splitlines()
        assert c == 2 and len(lines) == 1, e
        assert "is in use by pid" in lines[0] and "choose another hydra.run.dir" in lines[0]
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*") if p.name != ".genlab.lock"}
    assert after == {p: t for p, t in before.items() if p.name != ".genlab.lock"}


def test_rewind_sets_the_abandoned_branch_aside(tmp_path):
    run = tmp_path / "run"
    run_train(run, *TINY, *short(30, 10))
    run_train(
        tmp_path / "ignored", f"ckpt_path={run / 'checkpoints' / 'step0000010.ckpt'}", "trainer.max_steps=20"
    )
    live = {p.name: step_of(p) for p in (run / "checkpoints").glob("*.ckpt")}
    assert live == {"step0000010.ckpt": 10, "step0000020.ckpt": 20, "last.ckpt": 20}
    (abandoned,) = (run / "checkpoints").glob("abandoned-*")
    assert {p.name: step_of(p) for p in abandoned.glob("*.ckpt")} == {
        "step0000020.ckpt": 20,
        "step0000030.ckpt": 30,
        "last.ckpt": 30,
    }
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 20


def test_resume_applies_a_changed_learning_rate_and_records_it(tmp_path):
    run = tmp_path / "run"
    run_train(run, *TINY, *short(10, 10))
    run_train(tmp_path / "ignored", f"resume={run}", "optimizer.lr=0.01", "trainer.max_steps=12")
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert [g["lr"] for state in last["optimizer_states"] for g in state["param_groups"]] == [0.01, 0.01]
    assert last["genlab"]["config"]["optimizer"]["lr"] == 0.01  # the record equals what trained
    assert "optimizer.lr=0.01" in (run / ".hydra" / "overrides.yaml").read_text()


def test_resume_that_changes_the_architecture_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    run_train(run, *TINY, *short(10, 10))
    code, _, err = run_cli(capsys, "train", f"resume={run}", "model.latent_dim=8")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "model.latent_dim (4 -> 8)" in err
    assert step_of(run / "checkpoints" / "last.ckpt") == 10


def test_stale_temp_files_are_removed_and_outputs_share_one_mode(tmp_path):
    run = tmp_path / "run"
    run_train(run, *TINY, *short(10, 10))
    stale = run / "checkpoints" / ".last.ckpt.k2j4h5g6.tmp"
    stale.write_bytes(b"half a checkpoint")
    run_train(tmp_path / "ignored", f"resume={run}", "trainer.max_steps=20")
    assert not stale.exists()
    modes = {p.relative_to(run).as_posix(): p.stat().st_mode & 0o777 for p in run.rglob("*") if p.is_file()}
    assert set(modes.values()) == {output_mode()}, modes


def test_status_records_how_the_run_ended(tmp_path):
    run = tmp_path / "run"
    run_train(run, *TINY, *short(10, 10))
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "finished" and status["step"] == 10
    assert json.loads((run / "metrics.json").read_text())["status"] == "finished"


# ---- a run directory is untrusted input ----------------------------------------------------------
def one_error_line(code, err: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("name", [".genlab.lock", "train.log", "samples"])
def test_a_fresh_run_into_a_dir_with_a_linked_genlab_name_is_refused(tmp_path, capsys, name):
    """Nothing is written through the link: a linked file's bytes and a linked folder's content stay."""
    target = tmp_path / "elsewhere" / name.strip(".")
    if name == "samples":
        target.mkdir(parents=True)
        (target / "keep.txt").write_text("mine")
    else:
        target.parent.mkdir()
        target.write_text("precious\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / name).symlink_to(target)
    code, _, err = run_cli(capsys, "train", f"hydra.run.dir={run}", *TINY, *short(2, 2))
    line = one_error_line(code, err)
    assert f"{name} is a symbolic link" in line and "hydra.run.dir" in line
    if name == "samples":
        assert [p.name for p in target.iterdir()] == ["keep.txt"]
    else:
        assert target.read_text() == "precious\n"
    assert sorted(p.name for p in run.iterdir()) == [name]  # and nothing else was written


def test_resume_of_a_run_whose_lock_is_a_link_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    run_train(run, *TINY, *short(2, 2))
    target = tmp_path / "precious.txt"
    target.write_text("precious\n")
    (run / ".genlab.lock").symlink_to(target)
    last = (run / "checkpoints" / "last.ckpt").read_bytes()
    code, _, err = run_cli(capsys, "train", f"resume={run}", "trainer.max_steps=4")
    assert ".genlab.lock is a symbolic link" in one_error_line(code, err)
    assert target.read_text() == "precious\n"
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == last


def test_a_fresh_run_into_a_finished_run_is_refused_and_changes_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    run_train(run, *TINY, *short(4, 2))
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != "train.log"}
    code, _, err = run_cli(capsys, "train", f"hydra.run.dir={run}", *TINY, *short(2, 2))
    line = one_error_line(code, err)
    assert "already holds a run (status.json: finished)" in line and f"resume={run}" in line
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != "train.log"}
    assert after == before  # checkpoints, .hydra/overrides.yaml, status.json and events byte-identical


# ---- the divergence guard ----------------------------------------------------------------------
POINTS = DataSpec((2,), None, name="points")


class PoisonAt(pl.Callback):
    """Makes the generator's weights NaN after a given step (as a diverging update would)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.generator.parameters()).fill_(float("nan"))


def test_the_divergence_guard_never_writes_or_names_an_unverified_checkpoint(tmp_path):
    model = build(GAN, POINTS, net="mlp", latent_dim=4, g_hidden=[16], d_hidden=[16])
    data = TensorBatches(torch.randn(256, 2), torch.zeros(256, dtype=torch.long), batch_size=32, shuffle=True)
    checkpoints = Checkpoint(CheckpointConfig(dirpath=str(tmp_path), every_n_train_steps=2))
    trainer = bare_trainer(
        20,
        enable_checkpointing=True,
        callbacks=[checkpoints, DivergenceGuard(), PoisonAt(5)],
        log_every_n_steps=50,
    )
    with pytest.raises(TrainingDiverged) as info:
        trainer.fit(model, data)
    message = str(info.value)
    assert "non-finite" in message and "step 6" in message
    named = message.split("last good checkpoint: ")[1].split(":")[0].split(";")[0]
    assert Path(named).is_file() and step_of(Path(named)) == 4
    written = {step_of(p) for p in tmp_path.glob("*.ckpt")}
    assert max(written) == 4  # the poisoned state was never written
    for path in tmp_path.glob("*.ckpt"):
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        assert all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())

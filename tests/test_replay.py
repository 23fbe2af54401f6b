"""`resume=` replays a run directory's recorded overrides as untrusted input (genlab/commands/replay.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from runs_util import RING_GAN, run_cli, run_train, short

from genlab.commands.replay import CONFIG_DIR, check_replayed_code, stored_overrides
from genlab.utils.errors import UserError


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("replay") / "run"
    run_train(run, *RING_GAN, *short(2, 2), "threads=1")
    return run


def crafted_run(finished_run: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of a finished run whose overrides walk out of genlab's configs to a YAML file placed in the run
    directory, which would make Hydra open (truncate) a victim file before genlab runs."""
    run = tmp_path / "shared_run"
    shutil.copytree(finished_run, run)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (run / "evil.yaml").write_text(
        "# @package _global_\n"
        f"hydra:\n  callbacks:\n    x:\n      _target_: builtins.open\n      file: {victim}\n      mode: w\n"
    )
    walk = os.path.relpath(run / "evil", (CONFIG_DIR / "dataset").resolve())
    (run / ".hydra" / "overrides.yaml").write_text(f"- dataset={walk}\n")
    return run, victim


@pytest.mark.parametrize("how", ["resume", "ckpt_path"])
def test_a_group_value_walking_out_of_the_configs_is_refused(finished_run, tmp_path, capsys, how):
    run, victim = crafted_run(finished_run, tmp_path)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    target = run if how == "resume" else run / "checkpoints" / "last.ckpt"
    code, _, err = run_cli(capsys, "train", f"{how}={target}")
    assert victim.read_text() == "precious"
    assert code == 2 and len(err.strip().splitlines()) == 1 and "does not replay" in err, err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    "line",
    [
        "dataset=../../tmp/evil",
        "dataset=/tmp/evil",
        "+experiment=../x",
        "dataset=no_such_option",
        "logger=[csv,../x]",
        "../../tmp/evil=mnist",
        "model=gan,vae",
        "+dataset@_global_=ring",
    ],
)
def test_recorded_overrides_outside_genlab_options_are_refused(tmp_path, line):
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text(f"- {line}\n")
    with pytest.raises(UserError, match="does not replay|cannot be parsed"):
        stored_overrides(overrides)


def test_recorded_options_of_genlab_groups_are_replayed(tmp_path):
    overrides = tmp_path / "overrides.yaml"
    lines = ["dataset=ring", "logger=[csv,tensorboard]", "experiment=ring_gan", "~logger", "model.lr_g=0.001"]
    overrides.write_text("".join(f"- {line}\n" for line in lines))
    assert stored_overrides(overrides) == lines


def test_replayed_lines_may_not_add_hydra_callbacks_or_handlers(tmp_path):
    """The composed-config guard catches what a line filter could miss."""
    path = tmp_path / "overrides.yaml"
    with pytest.raises(UserError, match="hydra.callbacks"):
        check_replayed_code(["+hydra.callbacks.x._target_=builtins.print"], [], path)
    with pytest.raises(UserError, match="hydra.job_logging"):
        check_replayed_code(["hydra.job_logging.handlers.file.filename=/tmp/elsewhere.log"], [], path)
    check_replayed_code(["dataset=ring"], ["hydra.job_logging.handlers.file.filename=/tmp/x.log"], path)

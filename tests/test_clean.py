"""`genlab clean` on a real outputs tree: lists before it deletes, never touches a run in use."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from runs_util import RING_GAN, run_cli, run_train, short

from genlab.commands.clean import delete, runs_under
from genlab.utils.rundir import RunLock


def status(run: Path, value: str, updated: str = "2026-01-01T00:00:00+00:00", size: int = 1000) -> Path:
    (run / ".hydra").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x" * size)
    (run / "status.json").write_text(json.dumps({"status": value, "updated": updated}))
    return run


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def outputs(tmp_path) -> Path:
    root = tmp_path / "outputs"
    run_train(root / "runs" / "real", *RING_GAN, *short(2, 2), "threads=1")  # a real finished run
    status(root / "runs" / "failed", "failed")
    status(root / "runs" / "interrupted", "interrupted")
    status(root / "runs" / "diverged", "diverged")
    status(root / "runs" / "killed", "running")  # no live process: stale
    status(root / "runs" / "old_finished", "finished", updated="2020-01-01T00:00:00+00:00")
    (root / "runs" / "no_status" / ".hydra").mkdir(parents=True)  # a run without genlab's record: unknown
    (root / "runs" / "no_status" / ".hydra" / "overrides.yaml").write_text("[]\n")
    sweep = root / "multirun" / "2026-01-01_00-00-00"
    status(sweep / "0", "failed")
    status(sweep / "1", "interrupted")
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    (root / "notes").mkdir()  # not a run: never listed, never deleted
    (root / "notes" / "todo.txt").write_text("keep me")
    return root


@pytest.fixture
def live(outputs):
    """A run held by a live process (this one), status running."""
    run = status(outputs / "runs" / "live", "running")
    with RunLock(run):
        yield run


def clean(capsys, *args):
    return run_cli(capsys, "clean", *args)


def listed(out: str) -> dict[str, tuple[str, str]]:
    """run name -> (action, status) from the listing."""
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if parts[:1] in (["delete"], ["keep"]):
            rows[Path(line.split("  (")[0].split()[-1]).name] = (parts[0], parts[1])
    return rows


def test_default_is_a_dry_run_listing_every_run(outputs, live, capsys):
    before = tree(outputs)
    code, out, err = clean(capsys, "--output-dir", str(outputs))
    assert code == 0, err
    assert tree(outputs) == before  # nothing deleted, nothing written
    rows = listed(out)
    assert rows["real"] == ("keep", "finished")
    assert rows["live"] == ("keep", "running") and f"in use by pid {os.getpid()}" in out
    assert rows["killed"] == ("delete", "stale")
    assert rows["no_status"] == ("keep", "unknown")
    for name in ("failed", "interrupted", "diverged", "0", "1"):
        assert rows[name][0] == "delete", name
    assert "notes" not in rows
    assert "would delete 6 runs" in out and "add --yes" in out


def test_yes_deletes_the_bad_endings_and_keeps_the_rest(outputs, live, capsys):
    code, out, err = clean(capsys, "--output-dir", str(outputs), "--yes")
    assert code == 0, err
    assert "deleted 6 runs" in out
    left = {run.path.name for run in runs_under(outputs)}
    assert left == {"real", "live", "old_finished", "no_status"}
    assert not (outputs / "multirun" / "2026-01-01_00-00-00").exists()  # the sweep lost every job
    assert (outputs / "notes" / "todo.txt").read_text() == "keep me"
    assert (live / "checkpoints" / "last.ckpt").is_file()


def test_all_and_older_than(outputs, live, capsys):
    code, out, _ = clean(capsys, "--output-dir", str(outputs), "--all", "--older-than", "365", "--yes")
    assert code == 0
    assert "deleted 1 run " in out and not (outputs / "runs" / "old_finished").exists()
    code, out, err = clean(capsys, "--output-dir", str(outputs), "--all", "--yes")
    assert code == 0 and err == ""
    assert listed(out)["live"] == ("keep", "running")  # in use: never selected, never deleted
    assert {run.path.name for run in runs_under(outputs)} == {"live", "no_status"}  # no run record: kept


def test_status_choice_and_a_sweep_that_keeps_a_job(outputs, capsys):
    code, _, _ = clean(capsys, "--output-dir", str(outputs), "--status", "failed", "--yes")
    assert code == 0
    left = {run.path.name for run in runs_under(outputs)}
    assert "failed" not in left and "0" not in left and {"interrupted", "1", "diverged"} <= left
    assert (outputs / "multirun" / "2026-01-01_00-00-00" / "multirun.yaml").is_file()


def test_a_run_taken_after_listing_is_kept(outputs):
    (run,) = [r for r in runs_under(outputs) if r.path.name == "failed"]
    with RunLock(run.path):
        assert delete(run, outputs) is False
    assert run.path.is_dir()
    assert delete(run, outputs) is True and not run.path.exists()


def test_links_are_not_followed(tmp_path, capsys):
    elsewhere = status(tmp_path / "elsewhere" / "run", "failed")
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "link").symlink_to(elsewhere.parent)
    code, out, _ = clean(capsys, "--output-dir", str(tmp_path / "outputs"), "--all", "--yes")
    assert code == 0 and "0 runs under" in out
    assert (elsewhere / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--status", "nosuch"], "--status 'nosuch': choose from running, finished"),
        (["--older-than", "-1"], "--older-than -1.0: pass a number of days >= 0"),
        (["--all", "--status", "failed"], "not allowed with argument"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_mistakes_are_one_line(tmp_path, capsys, args, needle):
    code, out, err = clean(capsys, "--output-dir", str(tmp_path), *args)
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith("genlab clean: error: ") and needle in line


def test_missing_output_dir_is_not_an_error(tmp_path, capsys):
    code, out, _ = clean(capsys, "--output-dir", str(tmp_path / "nothing"))
    assert code == 0 and "does not exist" in out


def test_listed_in_genlab_help(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and "  clean " in out


def test_all_yes_keeps_a_folder_without_a_run_record_and_its_parent(tmp_path, capsys):
    """A folder with a README and checkpoints/ but no genlab run record is not a run: never deleted, nor its
    parent pruned."""
    outputs = tmp_path / "outputs"
    mine = outputs / "mine" / "experiment"
    (mine / "checkpoints").mkdir(parents=True)
    (mine / "checkpoints" / "model.pt").write_bytes(b"weights")
    (mine / "README").write_text("my notes")
    status(outputs / "runs" / "failed", "failed")
    code, out, err = clean(capsys, "--output-dir", str(outputs), "--all", "--yes")
    assert code == 0, err
    assert "deleted 1 run " in out and not (outputs / "runs" / "failed").exists()
    assert (mine / "README").read_text() == "my notes" and (mine / "checkpoints" / "model.pt").is_file()
    assert (outputs / "runs").is_dir()  # not a sweep folder: an emptied parent stays too


def test_a_run_whose_lock_is_a_link_is_kept_and_the_target_unchanged(tmp_path, capsys):
    outputs = tmp_path / "outputs"
    run = status(outputs / "runs" / "failed", "failed")
    target = tmp_path / "precious.txt"
    target.write_text("do not truncate me")
    (run / ".genlab.lock").symlink_to(target)
    code, out, err = clean(capsys, "--output-dir", str(outputs), "--yes")
    assert code == 0, err
    assert target.read_text() == "do not truncate me"
    assert run.is_dir() and (run / ".genlab.lock").is_symlink()
    assert "not deleted: .genlab.lock is a symbolic link" in out

"""Run-directory safety: the run lock, stale temp cleanup, status.json and abandoned checkpoints."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from genlab.utils.atomic import output_mode
from genlab.utils.errors import GenlabError
from genlab.utils.rundir import (
    NoFollowFileHandler,
    RunDirLocked,
    RunFileError,
    RunLock,
    checkpoint_step,
    clean_stale_temps,
    has_run_record,
    move_abandoned,
    read_json,
    read_status,
    read_yaml,
    unsafe_entry,
    write_status,
)

REPO = Path(__file__).resolve().parents[1]

HOLD_LOCK = "import sys, time; from genlab.utils.rundir import RunLock; RunLock(sys.argv[1]).acquire(); time.sleep(60)"


def test_second_lock_on_same_dir_is_refused_until_release(tmp_path):
    first = RunLock(tmp_path).acquire()
    holder = json.loads((tmp_path / ".genlab.lock").read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()

    with pytest.raises(RunDirLocked) as refused:
        RunLock(tmp_path).acquire()
    message = str(refused.value)
    assert f"pid {os.getpid()} on {socket.gethostname()}" in message
    assert "\n" not in message and isinstance(refused.value, GenlabError) and refused.value.exit_code == 2

    first.release()
    first.release()
    assert not (tmp_path / ".genlab.lock").exists()
    with RunLock(tmp_path) as again:
        assert again.held
    with RunLock(tmp_path):
        pass
    assert not (tmp_path / ".genlab.lock").exists()


def test_unreadable_holder_record_still_refuses(tmp_path):
    with RunLock(tmp_path):
        (tmp_path / ".genlab.lock").write_text("")
        with pytest.raises(RunDirLocked, match="in use by another process"):
            RunLock(tmp_path).acquire()


def test_lock_of_a_child_process_blocks_until_it_is_killed(tmp_path):
    lock_file = tmp_path / ".genlab.lock"
    child = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path)], cwd=REPO)
    try:
        deadline = time.monotonic() + 30
        while not (lock_file.exists() and lock_file.read_text().strip()):
            assert child.poll() is None, "the child exited before taking the lock"
            assert time.monotonic() < deadline, "the child never took the lock"
            time.sleep(0.05)
        with pytest.raises(RunDirLocked, match=f"pid {child.pid} on "):
            RunLock(tmp_path).acquire()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()

    assert lock_file.exists(), "SIGKILL leaves the lock file behind"
    with RunLock(tmp_path):
        assert json.loads(lock_file.read_text())["pid"] == os.getpid()


def test_clean_stale_temps_removes_only_temp_names(tmp_path):
    keep = [
        "last.ckpt",
        "step=100.ckpt",
        "samples.png",
        ".genlab.lock",
        "status.json",
        ".hydra/config.yaml",
        "checkpoints/last.ckpt",
        "notes.tmp",
        "tmp.png",
        "logs/events.out.tfevents.1700000000.host.1.0",
    ]
    stale = [
        ".last.ckpt.k2j_9x0a.tmp",
        ".status.json.abcdefgh.tmp",
        "checkpoints/.step=200.ckpt.0123abcd.tmp",
        "samples.tmp.png",
        "eval/grid.tmp.jpg",
    ]
    for name in keep + stale:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")

    removed = clean_stale_temps(tmp_path)

    assert sorted(removed) == sorted(tmp_path / name for name in stale)
    assert all(not (tmp_path / name).exists() for name in stale)
    assert all((tmp_path / name).exists() for name in keep)
    assert clean_stale_temps(tmp_path) == []


def test_write_status_merges_over_the_previous_record(tmp_path):
    assert read_status(tmp_path) is None
    write_status(tmp_path, "running", step=0, started="2024-01-01T00:00:00+00:00")
    first = read_status(tmp_path)
    assert first["status"] == "running" and first["step"] == 0 and "updated" in first

    write_status(tmp_path, "finished", step=100)
    record = read_status(tmp_path)
    assert record["status"] == "finished" and record["step"] == 100
    assert record["started"] == "2024-01-01T00:00:00+00:00"
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"], "no temp file is left behind"
    assert (tmp_path / "status.json").stat().st_mode & 0o777 == output_mode()


def test_output_mode_follows_umask():
    before = os.umask(0o027)
    try:
        assert output_mode() == 0o640
    finally:
        os.umask(before)
    assert output_mode() == 0o666 & ~before


def test_read_status_tolerates_corrupt_files_and_write_status_rejects_unknown_status(tmp_path):
    (tmp_path / "status.json").write_text('{"status": "runn')
    assert read_status(tmp_path) is None
    (tmp_path / "status.json").write_text("[1, 2]")
    assert read_status(tmp_path) is None

    with pytest.raises(ValueError, match="done"):
        write_status(tmp_path, "done")
    write_status(tmp_path, "failed", error="boom")
    assert read_status(tmp_path) == {
        "status": "failed",
        "updated": read_status(tmp_path)["updated"],
        "genlab": 1,
        "error": "boom",
    }


def _checkpoint(path: Path, step: int) -> Path:
    torch.save({"global_step": step, "state_dict": {}}, path)
    return path


def test_move_abandoned_sets_aside_checkpoints_after_the_rewind_step(tmp_path):
    for step in (10, 20, 30, 40):
        _checkpoint(tmp_path / f"step={step}.ckpt", step)
    _checkpoint(tmp_path / "last.ckpt", 40)
    (tmp_path / "broken.ckpt").write_bytes(b"not a checkpoint")
    assert checkpoint_step(tmp_path / "step=30.ckpt") == 30
    assert checkpoint_step(tmp_path / "broken.ckpt") is None

    folder = move_abandoned(tmp_path, rewind_step=20)

    assert folder is not None and folder.parent == tmp_path and folder.name.startswith("abandoned-")
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt", "step=30.ckpt", "step=40.ckpt"]
    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == ["broken.ckpt", "step=10.ckpt", "step=20.ckpt"]
    assert checkpoint_step(folder / "last.ckpt") == 40

    assert move_abandoned(tmp_path, rewind_step=20) is None


def test_move_abandoned_spares_keep_and_never_reuses_a_folder(tmp_path):
    keep = _checkpoint(tmp_path / "step=30.ckpt", 30)
    _checkpoint(tmp_path / "last.ckpt", 30)
    first = move_abandoned(tmp_path, rewind_step=10, keep=keep)
    assert [p.name for p in first.iterdir()] == ["last.ckpt"] and keep.exists()

    second = move_abandoned(tmp_path, rewind_step=10)
    assert second != first and [p.name for p in second.iterdir()] == ["step=30.ckpt"]


def test_acquire_retries_when_the_opened_lock_file_was_just_removed(tmp_path, monkeypatch):
    """A racer that opened the lock file just before its holder removed it must not lock the dead file."""
    holder = RunLock(tmp_path).acquire()
    stale_fd = os.open(tmp_path / ".genlab.lock", os.O_RDWR)
    holder.release()
    real_open = os.open
    opens = iter([lambda *a: stale_fd])
    monkeypatch.setattr(os, "open", lambda *a: next(opens, real_open)(*a))

    racer = RunLock(tmp_path).acquire()
    try:
        assert racer._is_current_file(racer._fd) and racer._fd != stale_fd
        with pytest.raises(RunDirLocked):
            RunLock(tmp_path).acquire()
    finally:
        racer.release()


def test_run_dir_reads_take_regular_files_only_within_a_cap_and_a_depth(tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text('{"status": "finished"}')
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / "status.json").symlink_to(outside)
    os.mkfifo(run / "metrics.json")
    (run / "health.json").write_text("[" * 200_000 + "]" * 200_000)
    (run / ".hydra" / "config.yaml").write_text("a: &a [1]\nb: [*a, *a]\n")
    (run / "big.json").write_text("1" * 100)
    for name, reason in [
        ("status.json", "a link or not a regular file"),
        ("metrics.json", "not a regular file"),  # a FIFO: refused at once, never waited on
        ("health.json", "nested deeper than"),
    ]:
        with pytest.raises(RunFileError, match=reason):
            read_json(run / name, within=run)
    with pytest.raises(RunFileError, match="larger than 10 bytes"):
        read_json(run / "big.json", limit=10)
    with pytest.raises(RunFileError, match="YAML alias"):
        read_yaml(run / ".hydra" / "config.yaml", within=run)
    (tmp_path / "linked_hydra").mkdir()
    (tmp_path / "linked_hydra" / "overrides.yaml").write_text("[]")
    (run / ".hydra").rename(tmp_path / "gone")
    (run / ".hydra").symlink_to(tmp_path / "linked_hydra")
    with pytest.raises(RunFileError):
        read_yaml(run / ".hydra" / "overrides.yaml", within=run)  # a linked folder on the way counts too
    assert read_status(run) is None and not has_run_record(run)


def test_the_log_handler_never_writes_through_a_link(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("precious\n")
    (tmp_path / "train.log").symlink_to(target)
    handler = NoFollowFileHandler(tmp_path / "train.log")
    handler.emit(logging.LogRecord("genlab", logging.INFO, __file__, 1, "a log line", None, None))
    handler.close()
    assert target.read_text() == "precious\n"
    assert "train.log is a symbolic link" in unsafe_entry(tmp_path)

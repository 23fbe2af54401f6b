"""Run directories are untrusted input: a real tiny finished run, randomly damaged (deletions, truncations, links
to files outside, FIFOs, huge and deeply nested files), driven through `genlab report`, `health`, `clean` and
`train resume=`. Each ends with exit 0 or 2, never a traceback or a hang, and nothing outside changes."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
import shutil
import threading
from pathlib import Path

import pytest
from runs_util import RING_GAN, run_train, short

from genlab.cli import main

FAST_CASES = 30
SLOW_CASES = 60
RESUME_EVERY = 10  # resume trains (about a second): every 10th case in the fast set, each one under slow
RECORDS = ("status.json", "metrics.json", "health.json", ".hydra/overrides.yaml", ".hydra/config.yaml")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("source") / "run"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        run_train(run, *RING_GAN, *short(2, 2), "threads=1")
    return run


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory) -> Path:
    """Files outside every case's directory that links in the run dirs point to."""
    root = tmp_path_factory.mktemp("sentinel")
    (root / "notes.txt").write_text("precious\n")
    (root / "data.json").write_text('{"status": "finished"}\n')
    (root / "folder").mkdir()
    (root / "folder" / "inside.txt").write_text("also precious\n")
    return root


def fingerprint(root: Path) -> dict[str, tuple[int, str]]:
    out = {}
    for path in sorted(root.rglob("*")):
        st = os.lstat(path)
        content = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        out[str(path.relative_to(root))] = (st.st_mode, content)
    return out


def entries(run: Path) -> list[Path]:
    return sorted(p for p in run.rglob("*") if not p.is_symlink())


def damage(run: Path, sentinel: Path, rng: random.Random) -> list[str]:
    """Apply 1-3 random damages; returns what was done (shown when a case fails)."""
    done = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["delete", "truncate", "link", "fifo", "huge", "deep"])
        candidates = entries(run) if kind in ("delete", "truncate", "link", "fifo") else []
        target = rng.choice(candidates) if candidates else run / rng.choice(RECORDS)
        if kind in ("huge", "deep"):
            target = run / rng.choice(RECORDS)
        if not real_folder(target.parent, run):
            continue  # an earlier damage made its folder a link or a FIFO: never write through it here
        if kind == "truncate" and not target.is_file():
            kind = "delete"
        original = target.read_bytes() if kind == "truncate" else b""
        remove(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if kind == "truncate":
            target.write_bytes(original[: rng.randint(0, len(original))])
        elif kind == "link":
            target.symlink_to(
                rng.choice([sentinel / "notes.txt", sentinel / "data.json", sentinel / "folder"])
            )
        elif kind == "fifo":
            os.mkfifo(target)
        elif kind == "huge":
            with open(target, "wb") as f:
                f.truncate(2**30)  # sparse: a gigabyte of zeros that costs no disk
        elif kind == "deep":
            target.write_text("[" * 200_000 + "]" * 200_000)
        done.append(f"{kind} {target.relative_to(run)}")
    return done


def real_folder(folder: Path, run: Path) -> bool:
    """Whether ``folder`` and every folder between it and ``run`` is missing or a real folder, not a link."""
    while folder != run:
        if folder.is_symlink() or (os.path.lexists(folder) and not folder.is_dir()):
            return False
        folder = folder.parent
    return True


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def call(*args: str) -> tuple[int, str]:
    """``genlab <args>`` in-process in a thread (a hang fails the case): (exit code, stderr)."""
    result: dict = {}
    err = io.StringIO()

    def target() -> None:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            try:
                result["code"] = main(list(args)) or 0
            except SystemExit as e:
                result["code"] = e.code
            except BaseException as e:  # noqa: BLE001 - reported as the failure below
                result["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), f"genlab {args[0]} hung"
    assert "error" not in result, f"genlab {args[0]} raised {result.get('error')!r}"
    return result["code"], err.getvalue()


@pytest.fixture
def no_plots(monkeypatch):
    """The report's matplotlib curves (seconds per page) draw numbers already read; what is fuzzed here is the
    reading of the run directory, so the cases skip the drawing."""
    monkeypatch.setattr("genlab.commands.report.curve_plots", lambda board: [])


def drive(case: int, finished_run: Path, sentinel: Path, tmp_path: Path, resume: bool) -> None:
    rng = random.Random(case)
    outputs = tmp_path / "outputs"
    run = outputs / "runs" / "run"
    shutil.copytree(finished_run, run, symlinks=True)
    done = damage(run, sentinel, rng)
    before = fingerprint(sentinel)
    commands = [
        ("report", str(run), f"out={tmp_path / 'page' / 'report.html'}"),
        ("health", str(run)),
        ("clean", "--output-dir", str(outputs)),
    ]
    if resume:
        commands.append(("train", f"resume={run}", "trainer.max_steps=4", "threads=1"))
    commands.append(("clean", "--output-dir", str(outputs), "--all", "--yes"))
    for args in commands:
        code, err = call(*args)
        assert code in (0, 2), (done, args, code, err)
        assert "Traceback" not in err and "Logging error" not in err, (done, args, err)
        if code == 2:
            assert err.count("genlab ") >= 1, (done, args, err)
    assert fingerprint(sentinel) == before, done


@pytest.mark.parametrize("case", range(FAST_CASES))
def test_damaged_run_dirs_end_in_0_or_2_and_change_nothing_outside(
    case, finished_run, sentinel, tmp_path, no_plots
):
    drive(case, finished_run, sentinel, tmp_path, resume=case % RESUME_EVERY == 0)


@pytest.mark.slow
@pytest.mark.parametrize("case", range(FAST_CASES, FAST_CASES + SLOW_CASES))
def test_damaged_run_dirs_more_cases(case, finished_run, sentinel, tmp_path, no_plots):
    drive(case, finished_run, sentinel, tmp_path, resume=True)

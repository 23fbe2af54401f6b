"""``genlab clean``: list the run directories under ``outputs/`` with status, size and age; delete some.

Without ``--yes`` nothing is deleted: the listing marks what would go. By default the runs that ended
badly are selected (failed, interrupted, diverged, and ``stale``: status ``running`` but no live process
holds the run, e.g. after a kill); ``--status``, ``--all`` and ``--older-than`` choose others. A run held by
a live process (its :class:`~genlab.utils.rundir.RunLock`) is never deleted: the lock is taken before deleting,
so a run cannot start or resume in a directory while it is being removed. Only folders carrying genlab's run
record (:func:`~genlab.utils.rundir.has_run_record`) are ever deleted, never one in which genlab's own names are
links, and only the sweep folders a deletion leaves without jobs are pruned.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from genlab.utils.errors import GenlabError
from genlab.utils.progress import byte_size, duration
from genlab.utils.rundir import (
    STATUSES,
    Run,
    RunDirLocked,
    RunLock,
    UnsafeRunDir,
    check_run_dir,
    describe,
    find_runs,
    has_run_record,
)

# files a sweep directory keeps beside its jobs: removed with the sweep once its last job is deleted
SWEEP_FILES = ("multirun.yaml", "optimization_results.yaml")
SELECTABLE = (*STATUSES, "stale")
BAD_ENDINGS = ("failed", "interrupted", "diverged", "stale")


class CleanError(GenlabError):
    """A mistake on the `genlab clean` command line."""


def runs_under(root: Path) -> list[Run]:
    """Every run directory below ``root`` (not ``root`` itself), described."""
    return [describe(path) for path in find_runs(root) if path != root]


def select(runs: list[Run], statuses: set[str], older_than_days: float | None, now: float) -> list[Run]:
    chosen = []
    for run in runs:
        if run.in_use or not run.recorded or run.problem or run.status not in statuses:
            continue
        if older_than_days is not None and now - run.updated < older_than_days * 86400:
            continue
        chosen.append(run)
    return chosen


def delete(run: Run, root: Path) -> bool:
    """Delete one run while holding its lock; False when a process took it meanwhile or it is no longer a run
    genlab may delete (its run record gone, a link put in place)."""
    try:
        check_run_dir(run.path)
        lock = RunLock(run.path).acquire()
    except (RunDirLocked, UnsafeRunDir):
        return False
    try:
        if not has_run_record(run.path):
            return False
        shutil.rmtree(run.path)
    finally:
        lock.release()
    prune_sweep_dirs(run.path.parent, root)
    return True


def prune_sweep_dirs(folder: Path, root: Path) -> None:
    """Remove sweep folders under ``root`` whose jobs are all gone: left with nothing but a sweep's own files
    (at least one of them, as regular files). Any other folder, empty or not, stays."""
    root = root.resolve()
    while folder.resolve() != root and root in folder.resolve().parents:
        try:
            entries = list(folder.iterdir())
        except OSError:
            return
        if not entries or any(
            e.name not in SWEEP_FILES or e.is_symlink() or not e.is_file() for e in entries
        ):
            return
        for entry in entries:
            entry.unlink()
        folder.rmdir()
        folder = folder.parent


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genlab clean",
        description=(
            "List the run directories under the output directory with status, size and age, and mark the "
            "ones selected for deletion. Nothing is deleted without --yes. Runs in use by a live process "
            "are never deleted."
        ),
        epilog=(
            "examples: `genlab clean` (what would go: failed, interrupted, diverged, stale runs); "
            "`genlab clean --yes`; `genlab clean --all --older-than 14 --yes`; "
            "`genlab clean --status failed,interrupted`"
        ),
    )
    p.add_argument(
        "--output-dir", default="outputs", help="where the runs are (paths.output_dir; default: outputs)"
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--status",
        help=f"comma list of statuses to select, from: {', '.join(SELECTABLE)} "
        f"(default: {','.join(BAD_ENDINGS)}: finished runs are kept)",
    )
    which.add_argument("--all", action="store_true", help="select every run not in use, finished ones too")
    p.add_argument(
        "--older-than", type=float, metavar="DAYS", help="only runs last updated more than DAYS ago"
    )
    p.add_argument(
        "--yes", "-y", action="store_true", help="delete the selected runs (default: only list them)"
    )
    return p


def parse(args: list[str]) -> argparse.Namespace:
    p = parser()

    def error(message: str) -> None:
        raise CleanError(f"{message}; see genlab clean --help")

    p.error = error  # type: ignore[method-assign]
    ns = p.parse_args(args)
    if ns.all:
        ns.statuses = set(SELECTABLE)
    elif ns.status is not None:
        ns.statuses = {s.strip() for s in ns.status.split(",") if s.strip()}
        unknown = sorted(ns.statuses - set(SELECTABLE))
        if unknown or not ns.statuses:
            raise CleanError(f"--status {ns.status!r}: choose from {', '.join(SELECTABLE)}")
    else:
        ns.statuses = set(BAD_ENDINGS)
    if ns.older_than is not None and not ns.older_than >= 0:
        raise CleanError(f"--older-than {ns.older_than}: pass a number of days >= 0")
    return ns


def clean(args: list[str], now: float | None = None) -> int:
    ns = parse(args)
    root = Path(ns.output_dir)
    if not root.is_dir():
        print(f"genlab clean: no runs: {root}/ does not exist")
        return 0
    now = time.time() if now is None else now
    runs = runs_under(root)
    chosen = select(runs, ns.statuses, ns.older_than, now)
    print(f"{len(runs)} run{'s' * (len(runs) != 1)} under {root}/ ({byte_size(sum(r.size for r in runs))})")
    if runs:
        width = max(len(str(r.path)) for r in runs)
        print(f"  {'action':<7} {'status':<11} {'size':>9} {'age':>7}  run")
        picked = {id(r) for r in chosen}
        for run in runs:
            action = "delete" if id(run) in picked else "keep"
            note = _note(run)
            print(
                f"  {action:<7} {run.status:<11} {byte_size(run.size):>9} {duration(now - run.updated):>7}  "
                f"{str(run.path):<{width}}{note}".rstrip()
            )
    freed = byte_size(sum(r.size for r in chosen))
    if not ns.yes:
        if chosen:
            print(
                f"would delete {len(chosen)} run{'s' * (len(chosen) != 1)} ({freed}); "
                "nothing deleted: add --yes to delete them"
            )
        else:
            print("nothing selected (genlab clean --help: --status, --all, --older-than)")
        return 0
    deleted = [run for run in chosen if delete(run, root)]
    for run in chosen:
        if run not in deleted:
            print(f"kept {run.path}: a process started using it or it changed since listing", file=sys.stderr)
    print(
        f"deleted {len(deleted)} run{'s' * (len(deleted) != 1)} ({byte_size(sum(r.size for r in deleted))})"
    )
    return 0


def _note(run: Run) -> str:
    """Why a run is kept whatever was selected, for its line of the listing."""
    if run.in_use:
        return f"  (in use by pid {run.holder.get('pid', '?')})"
    if run.problem:
        return f"  (not deleted: {run.problem})"
    if not run.recorded:
        return f"  (not deleted: no genlab run record, {run.record_note})"
    return ""


def main(args: list[str]) -> int:
    try:
        return clean(args)
    except GenlabError as e:
        print(f"genlab clean: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2

"""Keeping a run directory safe: one live process per run dir, a status record, no stale temp files.

A run directory (``hydra.run.dir``) holds checkpoints, logs, samples and ``status.json``. Two processes
writing into it at once would interleave checkpoints and logs, so :class:`RunLock` gives it to one live
process. A process killed mid-write leaves temp files behind; :func:`clean_stale_temps` removes them. A run
rewound to an earlier checkpoint sets later checkpoints aside with :func:`move_abandoned` instead of
deleting or silently mixing them.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import socket
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from genlab.utils.errors import GenlabError

LOCK_NAME = ".genlab.lock"
STATUS_NAME = "status.json"
STATUSES = ("running", "finished", "interrupted", "diverged", "failed")

# ``tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp")`` adds 8 characters from this alphabet.
_MKSTEMP_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
# ``<stem>.tmp.<ext>``, e.g. ``samples.tmp.png``.
_STEM_TEMP = re.compile(r"^.+\.tmp\.[A-Za-z0-9]+$")


class RunDirLocked(GenlabError):
    """Another live process holds the run directory's lock."""


def _now() -> str:
    """Local time with UTC offset, to the second: readable and unambiguous."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def output_mode() -> int:
    """Permission bits every genlab output file gets: ``0o666`` minus the process umask.

    ``tempfile.mkstemp`` creates files as ``0o600``; outputs made through it are chmod-ed to this mode
    so they look like files written with a plain ``open()``.
    """
    return 0o666 & ~_umask()


def _umask() -> int:
    """The current umask, read from /proc where possible (setting it, even briefly, is not thread-safe)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class RunLock:
    """Exclusive ownership of a run directory by one live process.

    The lock is an ``flock`` on ``<run_dir>/.genlab.lock`` held through a file descriptor that stays open
    while the lock is held, so the OS releases it when the process exits in any way, SIGKILL included.
    A lock file left behind by a dead process therefore does not block anyone. The file also holds a
    JSON record of the holder (pid, host, start time, command line) so a refused process can say who
    has the directory.

    Locks are per open file, so a second ``RunLock`` on the same directory is refused even within the
    same process. Use as ``with RunLock(run_dir): ...`` or call :meth:`acquire` / :meth:`release`.
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object currently holds the lock."""
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock and record this process as its holder; :class:`RunDirLocked` if another has it.

        Does nothing if this object already holds the lock.
        """
        if self._fd is not None:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, output_mode())
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise RunDirLocked(self._refusal()) from None
                raise
            if self._is_current_file(fd):
                break
            # The holder released (and removed) the file between our open and flock: retry on the new one.
            os.close(fd)
        self._fd = fd
        self._write_holder()
        return self

    def release(self) -> None:
        """Remove the lock file and drop the lock, if this object holds it; safe to call repeatedly."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self._is_current_file(fd):
                self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _is_current_file(self, fd: int) -> bool:
        """Whether ``fd`` is still the file at ``self.path`` (not one unlinked by a releasing holder)."""
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)

    def _write_holder(self) -> None:
        """Replace the lock file's content with this process's holder record."""
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": _now(),
            "argv": " ".join(sys.argv),
        }
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, (json.dumps(record) + "\n").encode(), 0)

    def _refusal(self) -> str:
        """One-line message naming the current holder, as far as its record can be read."""
        try:
            holder = json.loads(self.path.read_text())
            who = f"pid {holder['pid']} on {holder['host']} since {holder['started']} ({holder['argv']})"
        except (OSError, ValueError, TypeError, KeyError):
            who = "another process"
        return (
            f"run dir {self.run_dir} is in use by {who}; "
            f"wait for it to finish, stop it, or choose another hydra.run.dir"
        )


def lock_holder(run_dir: str | Path) -> dict[str, Any] | None:
    """The record of the live process holding ``run_dir``'s :class:`RunLock`, or None when none holds it.

    Only looks: the lock is probed with a shared, non-blocking ``flock`` on a read-only descriptor, so the
    directory is not modified. A holder whose record cannot be read is reported as ``{}``.
    """
    path = Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None  # no lock file: nobody holds it
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            try:
                holder = json.loads(path.read_text())
            except (OSError, ValueError):
                holder = {}
            return holder if isinstance(holder, dict) else {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _is_stale_temp(name: str) -> bool:
    """Whether a file name is one of the temp names genlab writes before renaming into place."""
    return bool(_MKSTEMP_TEMP.match(name) or _STEM_TEMP.match(name))


def clean_stale_temps(run_dir: str | Path) -> list[Path]:
    """Delete temp files left under ``run_dir`` (recursively) by writes that were killed; return them.

    Matches ``.<name>.<8 random chars>.tmp`` (from :func:`genlab.utils.atomic.save_atomic` and
    :func:`write_status`) and ``<stem>.tmp.<ext>`` (e.g. ``samples.tmp.png``); nothing else is touched.
    Call only while holding the run's :class:`RunLock`: a live writer's temp file looks the same.
    """
    removed = []
    for dirpath, _dirnames, filenames in os.walk(run_dir):
        for name in filenames:
            path = Path(dirpath) / name
            if _is_stale_temp(name) and path.is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)
                removed.append(path)
    return sorted(removed)


def read_status(run_dir: str | Path) -> dict[str, Any] | None:
    """The record in ``<run_dir>/status.json``, or None if it is missing or not a JSON object."""
    try:
        record = json.loads((Path(run_dir) / STATUS_NAME).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_status(run_dir: str | Path, status: str, **fields: Any) -> None:
    """Atomically update ``<run_dir>/status.json``: ``status``, ``updated`` and ``fields`` over the old record.

    Keys of the previous record not named in ``fields`` are kept, so a run's ``started`` survives
    later updates. A reader sees the old or the new record, never a partial one.
    """
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    run_dir = Path(run_dir)
    rest = {**(read_status(run_dir) or {}), **fields}
    rest.pop("status", None)
    rest.pop("updated", None)
    record = {"status": status, "updated": _now(), **rest}
    _write_json_atomic(run_dir / STATUS_NAME, record)


def _write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temp file beside ``path``, fsync, give it :func:`output_mode`, rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), output_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def checkpoint_step(path: str | Path) -> int | None:
    """The ``global_step`` stored in a Lightning checkpoint, or None if the file cannot be read as one."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        step = ckpt["global_step"]
    except Exception:  # noqa: BLE001 - any failure means "not a readable checkpoint"
        return None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def move_abandoned(ckpt_dir: str | Path, rewind_step: int, keep: Path | None = None) -> Path | None:
    """Set aside the checkpoints a rewind to ``rewind_step`` leaves behind; return their folder or None.

    Every ``*.ckpt`` directly in ``ckpt_dir`` (``last.ckpt`` included) whose step is greater than
    ``rewind_step`` moves into ``ckpt_dir/abandoned-<YYYYmmdd-HHMMSS>``, except ``keep``. They are
    kept, not deleted, so a mistaken rewind can be undone. Unreadable checkpoints stay where they are.
    """
    ckpt_dir = Path(ckpt_dir)
    keep_resolved = Path(keep).resolve() if keep is not None else None
    later = [
        path
        for path in sorted(ckpt_dir.glob("*.ckpt"))
        if path.is_file()
        and path.resolve() != keep_resolved
        and (step := checkpoint_step(path)) is not None
        and step > rewind_step
    ]
    if not later:
        return None
    folder = _new_abandoned_folder(ckpt_dir)
    for path in later:
        os.replace(path, folder / path.name)
    return folder


def _new_abandoned_folder(ckpt_dir: Path) -> Path:
    """Create ``abandoned-<timestamp>`` in ``ckpt_dir``, with ``-1``, ``-2``, ... if that name is taken."""
    base = f"abandoned-{datetime.now():%Y%m%d-%H%M%S}"
    folder, n = ckpt_dir / base, 0
    while True:
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            n += 1
            folder = ckpt_dir / f"{base}-{n}"

"""The run directory: what one is, finding and describing runs, and keeping one safe.

A run directory (``hydra.run.dir``) holds checkpoints, logs, samples and ``status.json``, genlab's run record:
``train`` writes it before anything else, so a folder is a genlab run when its ``status.json`` is a JSON object
with one of :data:`STATUSES` (:func:`has_run_record`). Two processes writing into it at once would interleave
checkpoints and logs, so :class:`RunLock` gives it to one live process, and :func:`lock_holder` tells who
(the one liveness probe). A process killed mid-write leaves temp files behind; :func:`clean_stale_temps`
removes them. A run rewound to an earlier checkpoint sets later checkpoints aside with :func:`move_abandoned`.

Run directories are shared and downloaded, so they are untrusted input. genlab never writes through a link in
one (:func:`check_run_dir` refuses a run dir whose genlab-written names are links or special files), and reads
its files through :func:`read_bytes` / :func:`read_json` / :func:`read_yaml` only: regular files reached
without following a link, up to a size cap, parsed to a bounded nesting depth.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import socket
import stat
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from genlab.utils.atomic import output_mode, write_json_atomic
from genlab.utils.errors import ConfigError, GenlabError

LOCK_NAME = ".genlab.lock"
STATUS_NAME = "status.json"
METRICS_NAME = "metrics.json"
HEALTH_NAME = "health.json"
LOG_NAME = "train.log"
STATUSES = ("running", "finished", "interrupted", "diverged", "failed")
RECORD_VERSION = 1  # the ``genlab`` field of status.json; records written before it carry none
# what genlab writes in a run dir: a link or special file under one of these names is refused before a write
WRITTEN_FILES = (LOCK_NAME, LOG_NAME, STATUS_NAME, METRICS_NAME, HEALTH_NAME)
WRITTEN_DIRS = (".hydra", "checkpoints", "samples", "tensorboard", "csv")
# a folder holding one of these is (or was) a run; only status.json makes it one genlab may delete
RUN_MARKERS = (STATUS_NAME, METRICS_NAME, ".hydra/overrides.yaml")
# what a run directory holds besides its records: never searched for nested runs
RUN_SUBDIRS = frozenset({*WRITTEN_DIRS, "lightning_logs"})
READ_LIMIT = 16 * 2**20  # bytes of one record (status, metrics, health, configs) read from a run dir
MAX_NESTING = 100  # JSON/YAML nesting genlab's records never come near

# ``tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp")`` adds 8 characters from this alphabet.
_MKSTEMP_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
# ``<stem>.tmp.<ext>``, e.g. ``samples.tmp.png``.
_STEM_TEMP = re.compile(r"^.+\.tmp\.[A-Za-z0-9]+$")


class RunDirLocked(GenlabError):
    """Another live process holds the run directory's lock."""


class UnsafeRunDir(ConfigError):
    """A run directory in which one of genlab's own names is a link or a special file."""


class RunFileError(ValueError):
    """A file in a run directory that genlab does not read: a link, not a regular file, too large or too deep."""


def _now() -> str:
    """Local time with UTC offset, to the second: readable and unambiguous."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


# ---- reading run-dir files --------------------------------------------------------------------------
def open_regular(path: str | Path, within: str | Path | None = None) -> int:
    """A read-only descriptor of the regular file ``path``, reached without following any link.

    With ``within`` (a folder above ``path``), no folder between the two may be a link either. Raises
    ``FileNotFoundError`` when it is missing and :class:`RunFileError` for a link, FIFO, device or folder;
    never blocks (a FIFO is opened non-blocking and refused).
    """
    path = Path(path)
    parts = path.relative_to(within).parts if within is not None else (path.name,)
    base = str(within) if within is not None else str(path.parent)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                inner = os.open(part, flags if last else flags | os.O_DIRECTORY, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise RunFileError("a link or not a regular file") from None
                raise
            os.close(fd)
            fd = inner
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RunFileError("not a regular file")
        return fd
    except BaseException:
        os.close(fd)
        raise


def read_bytes(
    path: str | Path, limit: int = READ_LIMIT, within: str | Path | None = None, head: bool = False
) -> bytes:
    """The content of the regular file ``path`` (see :func:`open_regular`); :class:`RunFileError` when it is
    larger than ``limit`` bytes, or with ``head`` its first ``limit`` bytes."""
    with os.fdopen(open_regular(path, within), "rb") as f:
        data = f.read(limit if head else limit + 1)
    if len(data) > limit and not head:
        raise RunFileError(f"larger than {limit} bytes")
    return data


def read_text(path: str | Path, limit: int = READ_LIMIT, within: str | Path | None = None) -> str:
    return read_bytes(path, limit, within).decode(errors="replace")


def read_json(path: str | Path, limit: int = READ_LIMIT, within: str | Path | None = None) -> Any:
    """Parsed JSON of a run-dir file; ``ValueError`` (:class:`RunFileError` or a decode error) when it is not."""
    text = read_bytes(path, limit, within)
    try:
        return check_nesting(json.loads(text))
    except RecursionError:
        raise RunFileError(f"nested deeper than {MAX_NESTING} levels") from None


def read_yaml(path: str | Path, limit: int = READ_LIMIT, within: str | Path | None = None) -> Any:
    """Parsed YAML (safe loader) of a run-dir file; :class:`RunFileError` when it cannot be read or parsed."""
    return parse_yaml(read_text(path, limit, within))


def parse_yaml(text: str) -> Any:
    """``text`` parsed by the safe loader to a bounded depth, else :class:`RunFileError`."""
    import yaml

    try:
        return check_nesting(yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    except RecursionError:
        raise RunFileError(f"nested deeper than {MAX_NESTING} levels") from None
    except yaml.YAMLError as e:
        raise RunFileError(" ".join(str(e).split())[:100]) from None


def check_nesting(value: Any) -> Any:
    """``value`` when its lists/dicts nest at most :data:`MAX_NESTING` deep and none appears twice (a YAML alias
    can make a structure that contains itself, or one that doubles at each level), else :class:`RunFileError`."""
    stack, seen = [(value, 1)], set()
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if id(node) in seen:
            raise RunFileError("a list or mapping appears more than once (a YAML alias)")
        if depth > MAX_NESTING:
            raise RunFileError(f"nested deeper than {MAX_NESTING} levels")
        seen.add(id(node))
        stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return value


def is_real_dir(path: str | Path) -> bool:
    """Whether ``path`` is a folder itself, not a link to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


# ---- what genlab writes -----------------------------------------------------------------------------
def unsafe_entry(run_dir: str | Path) -> str | None:
    """Why genlab may not write into ``run_dir`` (one of its names, or an entry of one of its folders, is a link
    or a special file), or None."""
    run_dir = Path(run_dir)
    for name in (*WRITTEN_FILES, *WRITTEN_DIRS):
        problem = _unsafe(run_dir, name, is_dir=name in WRITTEN_DIRS)
        if problem is not None:
            return problem
    for folder in WRITTEN_DIRS:  # e.g. tensorboard/hparams.yaml, which Lightning opens following links
        try:
            entries = sorted(os.listdir(run_dir / folder))
        except OSError:
            continue
        for entry in entries:
            problem = _unsafe(run_dir, f"{folder}/{entry}", is_dir=None)
            if problem is not None:
                return problem
    return None


def _unsafe(run_dir: Path, name: str, is_dir: bool | None) -> str | None:
    """Why the entry ``name`` is unsafe to write (a link; not a folder/regular file as ``is_dir`` wants; with
    None either is fine), or None (it is fine or missing)."""
    try:
        mode = os.lstat(run_dir / name).st_mode
    except FileNotFoundError:
        return None
    except OSError as e:
        return f"{name} cannot be examined ({e.strerror})"
    if stat.S_ISLNK(mode):
        return f"{name} is a symbolic link (to {_link_target(run_dir / name)})"
    if is_dir is None and not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        return f"{name} is neither a folder nor a regular file"
    if is_dir is True and not stat.S_ISDIR(mode):
        return f"{name} is not a folder"
    if is_dir is False and not stat.S_ISREG(mode):
        return f"{name} is not a regular file"
    return None


def _link_target(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def check_run_dir(run_dir: str | Path) -> None:
    """Refuse, in one line naming the entry, a run dir genlab would write through a link into (:class:`UnsafeRunDir`)."""
    problem = unsafe_entry(run_dir)
    if problem is not None:
        raise UnsafeRunDir(
            f"run dir {run_dir}: {problem}; genlab does not write through links or into special files: "
            "remove it, or choose another hydra.run.dir"
        )


class NoFollowFileHandler(logging.FileHandler):
    """The run's ``train.log`` (genlab's Hydra ``job_logging``): opened without following a link and only when
    it is a regular file. A refused log file is replaced by nothing; :func:`check_run_dir` names it."""

    def _open(self):
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(self.baseFilename, flags, output_mode())
        except OSError:
            return open(os.devnull, "a", encoding=self.encoding)  # noqa: SIM115 - the handler owns the stream
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return open(os.devnull, "a", encoding=self.encoding)  # noqa: SIM115
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


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
            fd = _open_lock_file(self.path, os.O_RDWR | os.O_CREAT)
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
            holder = read_json(self.path)
            who = f"pid {holder['pid']} on {holder['host']} since {holder['started']} ({holder['argv']})"
        except (OSError, ValueError, TypeError, KeyError):
            who = "another process"
        return (
            f"run dir {self.run_dir} is in use by {who}; "
            f"wait for it to finish, stop it, or choose another hydra.run.dir"
        )


def _open_lock_file(path: Path, flags: int) -> int:
    """A descriptor of the lock file: never through a link, never a FIFO or device (:class:`UnsafeRunDir`)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, output_mode())
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENXIO):
            raise UnsafeRunDir(f"{path} is a link or a special file; remove it to use this run dir") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafeRunDir(f"{path} is not a regular file; remove it to use this run dir")
    return fd


def lock_holder(run_dir: str | Path) -> dict[str, Any] | None:
    """The record of the live process holding ``run_dir``'s :class:`RunLock`, or None when none holds it.

    The one liveness probe: a shared, non-blocking ``flock`` on a read-only descriptor, so the directory is
    not modified (a lock file left by a dead process is free). A holder whose record cannot be read is ``{}``;
    a lock file that is a link or a special file is nobody's lock.
    """
    path = Path(run_dir) / LOCK_NAME
    try:
        fd = _open_lock_file(path, os.O_RDONLY)
    except (OSError, UnsafeRunDir):
        return None  # no lock file: nobody holds it
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            try:
                holder = read_json(path)
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
    """The record in ``<run_dir>/status.json``, or None if it is missing, unreadable or not a JSON object."""
    try:
        record = read_json(Path(run_dir) / STATUS_NAME, within=run_dir)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def has_run_record(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` carries genlab's run record: a status.json naming one of :data:`STATUSES`."""
    return (read_status(run_dir) or {}).get("status") in STATUSES


def write_status(run_dir: str | Path, status: str, **fields: Any) -> None:
    """Atomically update ``<run_dir>/status.json``: ``status``, ``updated`` and ``fields`` over the old record.

    Keys of the previous record not named in ``fields`` are kept, so a run's ``started`` survives
    later updates. A reader sees the old or the new record, never a partial one.
    """
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    run_dir = Path(run_dir)
    rest = {**(read_status(run_dir) or {}), **fields}
    for key in ("status", "updated", "genlab"):
        rest.pop(key, None)
    record = {"status": status, "updated": _now(), "genlab": RECORD_VERSION, **rest}
    write_json_atomic(run_dir / STATUS_NAME, record)


# ---- runs -------------------------------------------------------------------------------------------
@dataclass
class Run:
    """One run directory as found on disk."""

    path: Path
    status: str  # a status.json status, "stale" (running, no live process) or "unknown" (no run record)
    record: dict[str, Any]  # status.json's record ({} when it has none)
    record_note: (
        str | None
    )  # why status.json gives no record ("no status.json", "status.json unreadable (...)")
    size: int  # bytes
    updated: float  # seconds since the epoch of the last status update (or file change)
    holder: dict | None  # the live process holding the run, if any
    problem: str | None  # a link or special file under one of genlab's names (:func:`unsafe_entry`)

    @property
    def in_use(self) -> bool:
        return self.holder is not None

    @property
    def recorded(self) -> bool:
        """Whether genlab's run record marks the folder (only such runs are ever deleted)."""
        return self.record.get("status") in STATUSES


def is_run_dir(path: str | Path) -> bool:
    """Whether the folder holds one of :data:`RUN_MARKERS` (links included: a crafted run is still a run)."""
    return any(os.path.lexists(Path(path) / marker) for marker in RUN_MARKERS)


def find_runs(root: str | Path, max_depth: int | None = None) -> list[Path]:
    """Every run directory at or under ``root``, sorted by path: not descending into runs or their own
    folders (:data:`RUN_SUBDIRS`), never following links, at most ``max_depth`` levels below ``root``."""
    root = Path(root)
    runs = []
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        if is_run_dir(here):
            runs.append(here)
            dirnames.clear()
            continue
        if max_depth is not None and len(here.relative_to(root).parts) >= max_depth:
            dirnames.clear()
        dirnames[:] = sorted(d for d in dirnames if d not in RUN_SUBDIRS and is_real_dir(here / d))
    return sorted(runs, key=_natural)


def _natural(path: Path) -> tuple:
    """Job dirs 0, 1, ..., 10 in numeric order."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.parts)


def describe(path: str | Path) -> Run:
    """The :class:`Run` of one run directory; a damaged or crafted one is described, never an exception."""
    path = Path(path)
    record, note = _record(path)
    holder = lock_holder(path)
    status = record.get("status") if record.get("status") in STATUSES else "unknown"
    if status == "running" and holder is None:
        status = "stale"
    return Run(
        path, status, record, note, tree_size(path), updated_time(path, record), holder, unsafe_entry(path)
    )


def _record(path: Path) -> tuple[dict[str, Any], str | None]:
    """status.json's record and, when it gives none (or an unknown status), why."""
    try:
        record = read_json(path / STATUS_NAME, within=path)
    except FileNotFoundError:
        return {}, f"no {STATUS_NAME}"
    except (OSError, ValueError) as e:
        return {}, f"{STATUS_NAME} unreadable ({' '.join(str(e).split())[:80]})"
    if not isinstance(record, dict):
        return {}, f"{STATUS_NAME} is not a JSON object"
    if record.get("status") not in STATUSES:
        return record, f"{STATUS_NAME} has an unknown status {str(record.get('status'))[:40]!r}"
    return record, None


def tree_size(path: str | Path) -> int:
    """Bytes of the files under ``path`` (links counted as themselves, not followed)."""
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def updated_time(path: str | Path, record: dict[str, Any]) -> float:
    """When the run was last updated (seconds since the epoch): its record's ``updated``, else the newest
    change among the folder and its entries."""
    try:
        return datetime.fromisoformat(str(record["updated"])).timestamp()
    except (KeyError, ValueError, TypeError, OverflowError):
        pass
    path = Path(path)
    try:
        return max([path.lstat().st_mtime, *(p.lstat().st_mtime for p in path.iterdir())])
    except OSError:
        return 0.0


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

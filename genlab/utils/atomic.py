"""Atomic file writes: a reader sees the old complete file or the new complete file, never a partial one.

Every output genlab writes goes through :func:`write_atomic`: the temp file is created exclusively (``O_EXCL``
never follows a link) under the name :func:`genlab.utils.rundir.clean_stale_temps` recognizes, then renamed over
the target, which replaces a link there instead of writing through it. A write killed midway leaves nothing a
new run keeps.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from genlab.utils.errors import ConfigError


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


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """``write(f)`` into a temp file beside ``path``, fsync, then rename over ``path`` (temp removed on failure)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), output_mode())  # mkstemp makes 0600 files; every output shares one mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save(obj)`` to ``path``, atomically."""
    import torch  # here, not at the top: commands that write no tensors (genlab report) do not load torch

    write_atomic(path, lambda f: torch.save(obj, f))


def write_text_atomic(path: str | Path, text: str) -> None:
    write_atomic(path, lambda f: f.write(text.encode()))


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """``obj`` as indented JSON (values JSON cannot hold written as their ``str``), atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")


def copy_atomic(source: str | Path, path: str | Path) -> None:
    def copy(f: IO[bytes]) -> None:
        with open(source, "rb") as src:
            shutil.copyfileobj(src, f)

    write_atomic(path, copy)


def check_writable(path: Path, key: str) -> None:
    """Fail before any work when ``path`` cannot be written (a directory, missing permission, read-only or full
    disk)."""
    if path.is_dir():
        raise ConfigError(f"{key}={path} is a directory; pass a file name inside it ({key}={path}/<file>)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        reason = f"{e.filename} is not a directory" if isinstance(e, FileExistsError) else e.strerror or e
        raise ConfigError(f"{key}={path} cannot be written ({reason}); choose another {key}=<file>") from e

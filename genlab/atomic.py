"""Atomic file writes: a reader sees the old complete file or the new complete file, never a partial one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from genlab.rundir import output_mode


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temp file beside ``path``, fsync, then rename over ``path`` (temp removed on failure)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, output_mode())  # mkstemp makes 0600 files; every output shares one mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

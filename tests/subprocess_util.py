"""Helpers for tests that start genlab in fresh processes."""

from __future__ import annotations

import os
import socket
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def genlab_env(**extra: str) -> dict[str, str]:
    """The environment of a genlab subprocess: this checkout first, then whatever PYTHONPATH already holds
    (a machine may provide hydra/omegaconf that way)."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def free_port() -> int:
    """A TCP port nothing listens on now (for a rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

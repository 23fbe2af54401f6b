"""Atomic on-disk tensor cache: a dataset is decoded once and every later run just loads one file.

A cache file holds ``{"meta": ..., "data": uint8 (N, *sample_shape), "labels": long (N,), ...}``.
It is written to a temporary file in the same directory and moved into place with ``os.replace``,
so a killed run leaves either no cache or a complete one, never a half-written file that a later
run would trust. A file that does not load, has other ``meta`` or the wrong sample shape is rebuilt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch

from genlab.utils.atomic import save_atomic

log = logging.getLogger(__name__)

CACHE_VERSION = 1
CACHE_DIRNAME = "genlab_cache"


def cache_path(
    data_dir: str | Path, name: str, size: int, split: str, fingerprint: str | None = None
) -> Path:
    """``{data_dir}/genlab_cache/<name>-<size>-<split>[-<fingerprint>].pt``."""
    stem = f"{name}-{size}-{split}" + (f"-{fingerprint}" if fingerprint else "")
    return Path(data_dir) / CACHE_DIRNAME / f"{stem}.pt"


def _load_valid(path: Path, meta: dict, sample_shape: tuple[int, ...]) -> dict | None:
    if not path.is_file():
        return None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated / foreign / unreadable file: rebuild it
        log.warning("ignoring unreadable cache %s (%s); rebuilding", path, e)
        return None
    ok = (
        isinstance(obj, dict)
        and obj.get("meta") == meta
        and isinstance(obj.get("data"), torch.Tensor)
        and isinstance(obj.get("labels"), torch.Tensor)
        and tuple(obj["data"].shape[1:]) == tuple(sample_shape)
        and len(obj["labels"]) == len(obj["data"])
    )
    if not ok:
        log.warning("cache %s does not match the dataset config; rebuilding", path)
        return None
    return obj


def load_or_build(path: Path, build: Callable[[], dict], meta: dict, sample_shape: tuple[int, ...]) -> dict:
    """Load the cache at ``path`` if it is complete and matches ``meta``; else ``build()`` and save it.

    ``build`` returns a dict with at least ``data`` and ``labels`` tensors. A data_dir that cannot be
    written (read-only mount) only costs the cache, not the run.
    """
    meta = {"version": CACHE_VERSION, **meta}
    cached = _load_valid(path, meta, sample_shape)
    if cached is not None:
        cached.pop("meta")
        return cached
    tensors = build()
    try:
        save_atomic({"meta": meta, **tensors}, path)
    except OSError as e:
        log.warning("could not write dataset cache %s (%s); continuing without it", path, e)
    return tensors

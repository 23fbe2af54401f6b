"""Checks that what a command is about to allocate fits in this machine's memory, before allocating it."""

from __future__ import annotations

import os

import torch

from genlab.utils.errors import ConfigError
from genlab.utils.progress import byte_size

# optimizer training keeps weights, gradients and two Adam moments: about four copies of the parameters
TRAINING_COPIES = 4


def available_memory() -> int:
    """Bytes of memory available to a new allocation (MemAvailable), or the physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def require_memory(nbytes: int, what: str, fix: str) -> None:
    """ConfigError when ``nbytes`` would not fit in the memory available now."""
    free = available_memory()
    if nbytes > free:
        raise ConfigError(
            f"{what} needs about {byte_size(nbytes)}, more than the {byte_size(free)} available; {fix}"
        )


def parameter_count(build) -> int | None:
    """Parameters and buffers of the module ``build()`` returns, built on the meta device (no memory used).
    None when the module cannot be built there."""
    try:
        with torch.device("meta"):
            module = build()
    except Exception:  # noqa: BLE001 - a module that cannot be built on meta is sized when really built
        return None
    return sum(t.numel() for t in (*module.parameters(), *module.buffers()))


def check_run_fits(run) -> None:
    """The model (weights, gradients, optimizer state) and the in-memory dataset of a run must fit."""
    count = parameter_count(lambda: run.model_class(run.model, run.data, run.optimizer))
    if count is not None:
        require_memory(
            count * 4 * TRAINING_COPIES,
            f"model={run.model_family} as configured ({count:,} parameters)",
            "make the networks smaller (e.g. model widths or hidden sizes)",
        )
    data_bytes = run.dataset_class.memory_bytes(run.dataset, run.data)
    if data_bytes is not None:
        require_memory(
            data_bytes,
            f"dataset={run.dataset.name} in memory",
            "lower dataset.n_train / dataset.n_test or dataset.image_size",
        )

"""Which process of a multi-process run this one is, read from what its launcher put in the environment.

With torchrun (``RANK``), SLURM's srun (``SLURM_PROCID``), or Lightning's own ddp launcher (``LOCAL_RANK`` for
the other devices of a node, ``NODE_RANK`` set by the user on the other nodes), every process runs the whole
``genlab train`` command. They share one run directory, and only global rank 0 owns it: its lock, recorded
config, status and metrics. The others train (Lightning already keeps checkpoints and loggers to rank 0).
"""

from __future__ import annotations

import os

RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "NODE_RANK", "GROUP_RANK")


def launched_rank() -> int:
    """0 for the process that owns the run directory; a positive number (the global rank where the launcher
    gives it) for a process a launcher started as another rank."""
    rank = os.environ.get("RANK", "").strip()
    if rank.isdigit():  # torchrun's global rank decides, even inside an srun task (`srun torchrun ...`)
        return int(rank)
    for name in RANK_VARIABLES[1:]:  # any non-zero part of the rank: not global rank 0
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 0


def is_worker(world_size: int | None) -> bool:
    """Whether this process is a rank > 0 of a run of ``world_size`` processes (None: not known from the
    config, e.g. ``trainer.devices=-1``). A single-process run owns its directory whatever the environment
    says (e.g. one task of a SLURM array inside an allocation of several)."""
    return world_size != 1 and launched_rank() > 0

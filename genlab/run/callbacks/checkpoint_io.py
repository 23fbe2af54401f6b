"""Checkpoint files as genlab writes and reads them, for Lightning's own saves and restores."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

from pytorch_lightning.plugins.io import TorchCheckpointIO

from genlab.checkpoint import read_checkpoint, read_state_dict, seal
from genlab.utils.atomic import save_atomic
from genlab.utils.compat import SPAWN_RESULTS_NAME
from genlab.utils.errors import CheckpointError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes are sealed (:func:`genlab.checkpoint.seal`: the digests of the dict as it goes to disk) and go to a
    temp file in the same directory, renamed over the target: a kill or a full disk mid-write never leaves a
    truncated ``last.ckpt``, and a full disk ends the run in one line. Reads go through genlab's checkpoint
    reader (``weights_only=True``, one-line errors): a trainer checkpoint (``trainer.fit(ckpt_path=...)``) must
    carry a verified run record and training state, the bare model state dict that DDP-spawn's rank 0 hands
    back to the main process must hold named tensors only."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        seal(checkpoint)
        try:
            save_atomic(checkpoint, path)
        except OSError as e:
            if e.errno not in DISK_FULL:
                raise
            raise CheckpointError(
                f"cannot write checkpoint {path}: {e.strerror or 'no space left'}; the checkpoints written "
                "before it are kept: free disk space (or set paths.output_dir elsewhere) and continue with "
                "genlab train resume=<run dir>"
            ) from e

    def load_checkpoint(
        self, path: str | Path, map_location: Any | None = None, weights_only: bool | None = None
    ):
        if Path(path).name == SPAWN_RESULTS_NAME:
            return read_state_dict(path)
        return read_checkpoint(path, key="ckpt_path", resume=True)

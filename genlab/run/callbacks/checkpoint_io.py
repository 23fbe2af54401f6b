"""Checkpoint files as genlab writes and reads them, for Lightning's own saves and restores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytorch_lightning.plugins.io import TorchCheckpointIO

from genlab.utils.atomic import save_atomic
from genlab.utils.compat import SPAWN_RESULTS_NAME


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes go to a temp file in the same directory, renamed over the target (a kill mid-write never leaves
    a truncated ``last.ckpt``); reads go through genlab's checkpoint reader (``weights_only=True``, one-line
    errors): a trainer checkpoint (``trainer.fit(ckpt_path=...)``) must carry a verified run record, the bare
    model state dict that DDP-spawn's rank 0 hands back to the main process must hold named tensors only."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        save_atomic(checkpoint, path)

    def load_checkpoint(
        self, path: str | Path, map_location: Any | None = None, weights_only: bool | None = None
    ):
        from genlab.checkpoint import read_checkpoint, read_state_dict

        if Path(path).name == SPAWN_RESULTS_NAME:
            return read_state_dict(path)
        return read_checkpoint(path, key="ckpt_path")

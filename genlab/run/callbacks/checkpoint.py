"""Lightning's ModelCheckpoint with genlab's rules for a run directory.

* ``last.ckpt`` always holds the final state: Lightning saves only at intervals, epoch ends and validation
  ends, so a run whose ``max_steps`` is not a multiple of ``every_n_train_steps`` would otherwise end with
  a stale ``last.ckpt``.
* With a ``monitor`` (best-by-metric checkpoints), checkpoints are ranked when validation ends, with that
  validation's metrics: a save on ``every_n_train_steps`` runs before the step's validation and would
  score the checkpoint with the previous round's value.
* Paths in the callback's saved state are relative to the checkpoint directory, and files are never
  versioned (``-v1``): a moved or copied run directory resumes and keeps writing ``last.ckpt``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from pytorch_lightning.callbacks import ModelCheckpoint

from genlab.config.schema import check_at_least, check_choice, require
from genlab.utils.compat import save_last_checkpoint

PATH_KEYS = ("best_model_path", "kth_best_model_path", "last_model_path")


@dataclass(frozen=True)
class CheckpointConfig:
    """``callbacks.model_checkpoint``."""

    dirpath: str = "checkpoints"  # where checkpoints are written
    filename: str = "step{step:07d}"  # periodic checkpoint name (Lightning's format string)
    auto_insert_metric_name: bool = False  # Lightning's metric=value in file names
    save_last: bool = True  # keep last.ckpt (what resume= continues from)
    # a periodic checkpoint every N training steps (null: none)
    every_n_train_steps: int | None = 500
    # keep every periodic checkpoint (-1); with monitor set, keep the best k
    save_top_k: int = -1
    # e.g. val/neg_elbo (VAE) to keep the best-by-metric checkpoints
    monitor: str | None = None
    mode: str = "min"  # min | max: whether a lower or higher monitor value is better

    def __post_init__(self) -> None:
        require(bool(self.dirpath.strip()), "callbacks.model_checkpoint.dirpath is empty; set a directory")
        require(
            bool(self.filename.strip()), "callbacks.model_checkpoint.filename is empty; e.g. step{step:07d}"
        )
        if self.every_n_train_steps is not None:
            check_at_least("callbacks.model_checkpoint.every_n_train_steps", self.every_n_train_steps, 1, 500)
        check_at_least("callbacks.model_checkpoint.save_top_k", self.save_top_k, -1, 1)
        check_choice("callbacks.model_checkpoint.mode", self.mode, ("min", "max"))


class Checkpoint(ModelCheckpoint):
    config_class = CheckpointConfig

    def __init__(self, config: CheckpointConfig) -> None:
        every_n_train_steps, every_n_epochs = config.every_n_train_steps, None
        if config.monitor is not None:  # with step-based validation: rank on every validation end
            every_n_train_steps, every_n_epochs = None, 1
        super().__init__(
            dirpath=config.dirpath,
            filename=config.filename,
            auto_insert_metric_name=config.auto_insert_metric_name,
            save_last=config.save_last,
            every_n_train_steps=every_n_train_steps,
            every_n_epochs=every_n_epochs,
            save_top_k=config.save_top_k,
            monitor=config.monitor,
            mode=config.mode,
            enable_version_counter=False,
        )

    def on_train_end(self, trainer, pl_module) -> None:
        if self.save_last and not trainer.interrupted:
            save_last_checkpoint(self, trainer)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["dirpath"] = "."
        for key in PATH_KEYS:
            state[key] = os.path.basename(state[key])
        state["best_k_models"] = {os.path.basename(p): v for p, v in state["best_k_models"].items()}
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        base = str(self.dirpath)
        state = dict(state_dict, dirpath=self.dirpath)
        for key in PATH_KEYS:
            state[key] = rebased(state.get(key, ""), base)
        state["best_k_models"] = {rebased(p, base): v for p, v in state.get("best_k_models", {}).items()}
        super().load_state_dict(state)


def rebased(name: str, base: str) -> str:
    """A saved checkpoint name -> its path in this run's checkpoint directory (old absolute paths too)."""
    return os.path.join(base, os.path.basename(name)) if name else ""

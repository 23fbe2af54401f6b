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

import dataclasses
import os
from typing import Any

from pytorch_lightning.callbacks import ModelCheckpoint

from genlab.config.derived import check_annotations, signature_fields
from genlab.config.schema import check_at_least, check_choice, require
from genlab.utils.compat import save_last_checkpoint

PATH_KEYS = ("best_model_path", "kth_best_model_path", "last_model_path")


class CheckpointChecks:
    """genlab's checks on top of the argument types ModelCheckpoint declares."""

    def __post_init__(self) -> None:
        check_annotations(self, "callbacks.model_checkpoint")
        require(
            bool(str(self.dirpath).strip()), "callbacks.model_checkpoint.dirpath is empty; set a directory"
        )
        require(
            bool(self.filename.strip()), "callbacks.model_checkpoint.filename is empty; e.g. step{step:07d}"
        )
        if self.every_n_train_steps is not None:
            check_at_least("callbacks.model_checkpoint.every_n_train_steps", self.every_n_train_steps, 1, 500)
        check_at_least("callbacks.model_checkpoint.save_top_k", self.save_top_k, -1, 1)
        check_choice("callbacks.model_checkpoint.mode", self.mode, ("min", "max"))


# ModelCheckpoint arguments genlab sets itself: the cadence follows `monitor` (see Checkpoint), and files are never
# versioned (a moved run keeps writing last.ckpt)
OWNED = {"every_n_epochs": "every_n_train_steps / monitor", "enable_version_counter": "never versioned"}
DEFAULTS = {
    "dirpath": "checkpoints",
    "filename": "step{step:07d}",
    "auto_insert_metric_name": False,
    "save_last": True,  # last.ckpt: what resume= continues from
    "every_n_train_steps": 500,
    "save_top_k": -1,  # every periodic checkpoint; with monitor set, the best k
}

# ``callbacks.model_checkpoint``: every ModelCheckpoint argument, typed from Lightning's annotations
CheckpointConfig = dataclasses.make_dataclass(
    "CheckpointConfig",
    signature_fields(ModelCheckpoint, exclude=OWNED, defaults=DEFAULTS),
    bases=(CheckpointChecks,),
    frozen=True,
    namespace={
        "__module__": __name__,
        "__doc__": "``callbacks.model_checkpoint``: Lightning's ModelCheckpoint.",
    },
)


class Checkpoint(ModelCheckpoint):
    config_class = CheckpointConfig

    def __init__(self, config: CheckpointConfig) -> None:
        every_n_train_steps, every_n_epochs = config.every_n_train_steps, None
        if config.monitor is not None:  # with step-based validation: rank on every validation end
            every_n_train_steps, every_n_epochs = None, 1
        super().__init__(
            **{**dataclasses.asdict(config), "every_n_train_steps": every_n_train_steps},
            every_n_epochs=every_n_epochs,
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

"""The always-on callbacks of a genlab run: what keeps a run directory exact and honest across saves,
resumes and failures. ``train()`` adds them; they are not configurable.

* :class:`RngState`: process RNG streams are saved in every checkpoint and restored on resume, and
  validation never consumes them, so a resumed run continues exactly as an uninterrupted one.
* :class:`DivergenceGuard`: stops on a non-finite loss, and never lets a checkpoint of non-finite weights be
  written; its message names only a checkpoint whose state it verified.
* :class:`RunRecordWriter`: every checkpoint carries the run record (registry names, typed configs, data
  spec, versions) that ``genlab.checkpoint.load_run`` rebuilds the model from, sealed when it is written.
* :class:`FlushLoggers`: loggers are flushed before a checkpoint is written, so a kill after a checkpoint
  never loses logged points from before it.
* :class:`ApplyResumeSettings`: optimizer settings changed on resume (learning rate, betas, ...) replace
  the restored ones, so what trains equals the recorded config.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from genlab.checkpoint import first_non_finite
from genlab.models.capabilities import Sampler
from genlab.utils.compat import set_last_lr
from genlab.utils.errors import TrainingDiverged

PROBE = 8  # fixed latents decoded to check that a checkpoint's generator still produces finite samples


class RngState(pl.Callback):
    def state_dict(self) -> dict[str, Any]:
        np_state = np.random.get_state()
        py_version, py_state, py_gauss = random.getstate()
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
            "python": [*py_state, py_version, py_gauss],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
        name, keys, *rest = state["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
        py = state["python"]
        random.setstate((py[-2], tuple(py[:-2]), py[-1]))

    def on_validation_start(self, trainer, pl_module) -> None:
        self._outside = torch.get_rng_state()
        self._outside_cuda = (
            torch.cuda.get_rng_state(pl_module.device) if pl_module.device.type == "cuda" else None
        )

    def on_validation_end(self, trainer, pl_module) -> None:
        torch.set_rng_state(self._outside)
        if self._outside_cuda is not None:
            torch.cuda.set_rng_state(self._outside_cuda, pl_module.device)


class DivergenceGuard(pl.Callback):
    """Checks the step's losses at log cadence (a device sync each time) and the state of every checkpoint.

    Every checkpoint passes this guard before it is written, so the checkpoint callback's latest file is one
    whose state was verified: that is the one a failure names."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % max(1, trainer.log_every_n_steps) and not trainer.should_stop:
            return
        losses = outputs if isinstance(outputs, dict) else {"loss": outputs}
        name = first_non_finite(losses)
        if name is not None:
            value = losses[name].float().mean().item()
            self.fail(trainer, f"{name} became {value} at step {trainer.global_step}")

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        bad = first_non_finite(checkpoint["state_dict"])
        if bad is not None:
            self.fail(trainer, f"the weights became non-finite by step {trainer.global_step} (first: {bad})")
        if isinstance(pl_module, Sampler):
            with torch.no_grad():
                probe = pl_module.decode(pl_module.fixed_latents()[:PROBE])
            if first_non_finite({"samples": probe}) is not None:
                self.fail(trainer, f"the generator's samples became non-finite by step {trainer.global_step}")

    def fail(self, trainer, what: str) -> None:
        last = getattr(trainer.checkpoint_callback, "last_model_path", "") or ""
        where = (
            f"last good checkpoint: {last}"
            if last and Path(last).is_file()
            else "no checkpoint was written yet"
        )
        raise TrainingDiverged(
            f"{what}: training stopped, {where}; try a lower optimizer.lr or model.grad_clip "
            "(on resume both take effect: genlab train resume=<run dir> optimizer.lr=...)"
        )


class RunRecordWriter(pl.Callback):
    """The run record goes into every checkpoint; :class:`~genlab.run.callbacks.checkpoint_io.AtomicCheckpointIO`
    seals it with the digests when the finished dict is written."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        from genlab.checkpoint import RECORD_KEY

        checkpoint[RECORD_KEY] = dict(self.record)


class FlushLoggers(pl.Callback):
    """Lightning calls ``logger.save()`` after every log; TensorBoard's events still pass through a background
    writer thread, so they are drained synchronously before the checkpoint is written."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        for logger in trainer.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "flush"):
                experiment.flush()


class ApplyResumeSettings(pl.Callback):
    """``changed[i]`` holds the settings of optimizer ``i`` that differ from the checkpoint's record."""

    def __init__(self, changed: list[dict[str, Any]]) -> None:
        self.changed = changed

    def on_train_start(self, trainer, pl_module) -> None:
        schedulers = {id(c.scheduler.optimizer): c.scheduler for c in trainer.lr_scheduler_configs}
        for optimizer, settings in zip(trainer.optimizers, self.changed, strict=True):
            settings = dict(settings)
            new_lr = settings.pop("lr", None)
            scheduler = schedulers.get(id(optimizer))
            for j, group in enumerate(optimizer.param_groups):
                group.update(settings)
                if new_lr is None:
                    continue
                if scheduler is None:
                    group["lr"] = new_lr
                    continue
                # the schedule continues at the same point of its curve, scaled to the new base rate
                factor = group["lr"] / scheduler.base_lrs[j]
                scheduler.base_lrs[j] = group["initial_lr"] = new_lr
                group["lr"] = new_lr * factor
            if scheduler is not None:
                set_last_lr(scheduler, [group["lr"] for group in optimizer.param_groups])

"""``train(cfg) -> dict``: one experiment, as a plain function (the CLI, tests and sweepers call it)."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from genlab.callbacks.checkpoint_io import AtomicCheckpointIO
from genlab.checkpoint import read_checkpoint
from genlab.config import resolve_data_config, validate_config
from genlab.errors import ConfigError

log = logging.getLogger("genlab")
# Lightning advice that does not apply to genlab runs (GAN checkpoints are taken between steps on purpose)
warnings.filterwarnings("ignore", message=".*ModelCheckpoint with manual optimization.*")
warnings.filterwarnings("ignore", message=".*LeafSpec.*")
warnings.filterwarnings("ignore", message=".*does not have many workers.*")


def instantiate_dict(node: DictConfig | None) -> list:
    """Instantiate every entry of a ``name: {_target_: ...}`` mapping (callbacks, loggers)."""
    if not node:
        return []
    return [instantiate(v) for v in node.values() if v is not None and "_target_" in v]


def plain(value: Any) -> Any:
    """Tensors/numpy scalars -> Python numbers, for metrics.json and sweepers."""
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    return value


def build(cfg: DictConfig) -> tuple[pl.LightningDataModule, pl.LightningModule]:
    """Validate the config, fill auto keys and instantiate datamodule + model (no Trainer)."""
    typed = validate_config(cfg)
    dataset_cls, model_cls = get_class(cfg.dataset._target_), get_class(cfg.model._target_)
    resolve_data_config(cfg, dataset_cls, model_cls, typed)
    typed = validate_config(cfg)  # re-check after filling the auto keys
    datamodule = instantiate(cfg.dataset, _convert_="all")
    model_kwargs = OmegaConf.to_container(cfg.model, resolve=True)
    model_kwargs.pop("_target_")
    model = model_cls(
        data=datamodule.spec, optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True), **model_kwargs
    )
    model.run_config = OmegaConf.to_container(cfg, resolve=True)
    return datamodule, model


def train(cfg: DictConfig, extra_callbacks: list[pl.Callback] | None = None) -> dict[str, Any]:
    """Seed, build datamodule/model/trainer, fit, write ``metrics.json``; return the final metrics.

    The returned dict holds every logged metric plus ``optimized_metric`` (the value a sweeper optimizes,
    None if the config names none) and ``run_dir``.
    """
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    datamodule, model = build(cfg)
    run_dir = Path(cfg.paths.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    log.info("run dir: %s", run_dir.resolve())

    loggers = build_loggers(cfg.get("logger"), resume_step=resume_global_step(cfg))
    callbacks = [*instantiate_dict(cfg.get("callbacks")), *(extra_callbacks or [])]
    # Lightning refuses these callbacks when the trainer switches their feature off
    if cfg.trainer.get("enable_progress_bar") is False:
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.ProgressBar)]
    if cfg.trainer.get("enable_checkpointing") is False:
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.ModelCheckpoint)]
    try:
        trainer: pl.Trainer = instantiate(
            cfg.trainer,
            logger=loggers or False,
            callbacks=callbacks,
            plugins=[AtomicCheckpointIO()],
            _convert_="all",
        )
    except InstantiationException as e:  # e.g. trainer=gpu without a GPU, an unknown strategy
        cause = e.__cause__ or e
        raise ConfigError(
            f"trainer: {str(cause).strip().splitlines()[0]} (see trainer=cpu|gpu|ddp|ddp_cpu)"
        ) from e
    last_validation = LastValidationStep()
    trainer.callbacks.append(last_validation)
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))

    metrics = {k: plain(v) for k, v in trainer.callback_metrics.items()}
    if trainer.limit_val_batches and last_validation.step != trainer.global_step and not trainer.interrupted:
        # the final metrics (metrics.json, the sweeper's value) describe the final model
        trainer.validate(model, datamodule=datamodule, verbose=False)
        metrics.update({k: plain(v) for k, v in trainer.callback_metrics.items()})
    metrics["global_step"] = trainer.global_step or saved_step(trainer)
    if trainer.is_global_zero:
        for lg in loggers:
            # final values under final/* so the HParams tab compares runs without touching the curves
            finals = {
                f"final/{k}": v
                for k, v in metrics.items()
                if k.startswith(("val/", "train/")) and isinstance(v, float)
            }
            if isinstance(lg, pl.loggers.TensorBoardLogger):
                lg.log_hyperparams(flat_hparams(cfg), finals)
            else:
                lg.log_hyperparams(flat_hparams(cfg))
            lg.finalize("success")
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    name = cfg.get("optimized_metric")
    if name and name not in metrics:
        raise ConfigError(
            f"optimized_metric={name!r} was not logged; logged metrics: {', '.join(sorted(metrics))}"
        )
    metrics["optimized_metric"] = metrics.get(name) if name else None
    metrics["run_dir"] = str(run_dir)
    log.info("run dir: %s", run_dir.resolve())
    return metrics


class LastValidationStep(pl.Callback):
    """Remembers the training step of the latest validation run."""

    step = -1

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.step = trainer.global_step


def build_loggers(node: DictConfig | None, resume_step: int | None) -> list:
    loggers = []
    for v in (node or {}).values():
        if v is None or "_target_" not in v:
            continue
        if resume_step is not None and v._target_.endswith("TensorBoardLogger"):
            # hide events the killed run wrote after its checkpoint: one continuous set of curves
            loggers.append(instantiate(v, purge_step=resume_step + 1))
        else:
            loggers.append(instantiate(v))
    return loggers


def resume_global_step(cfg: DictConfig) -> int | None:
    """The step stored in ``cfg.ckpt_path`` (None when not resuming)."""
    path = cfg.get("ckpt_path")
    if not path:
        return None
    return int(read_checkpoint(path).get("global_step", 0))


def saved_step(trainer: pl.Trainer) -> int:
    """The final step as saved in last.ckpt: after spawned DDP workers the main process's loops never ran."""
    ckpt = getattr(trainer.checkpoint_callback, "last_model_path", "") or ""
    last = Path(ckpt) if ckpt else Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"
    if not last.is_file():
        return 0
    return int(torch.load(last, map_location="cpu", weights_only=True).get("global_step", 0))


def flat_hparams(cfg: DictConfig) -> dict[str, Any]:
    """Scalar hyperparameters for TensorBoard's HParams tab (dataset/model/optimizer/trainer keys, seed)."""
    out: dict[str, Any] = {"seed": cfg.seed}
    for group in ("dataset", "model", "optimizer", "trainer"):
        node = OmegaConf.to_container(cfg[group], resolve=True)
        for k, v in node.items():
            if isinstance(v, bool | int | float | str) and k not in (
                "_target_",
                "data_dir",
                "default_root_dir",
            ):
                out[f"{group}.{k}"] = v
            elif isinstance(v, list):
                out[f"{group}.{k}"] = str(v)
    return out


def train_task(cfg: DictConfig) -> float | None:
    """The Hydra job behind ``genlab train``: returns the optimized metric (what a sweeper minimizes)."""
    return train(cfg)["optimized_metric"]

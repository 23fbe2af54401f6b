"""``train(cfg) -> dict``: one experiment, as a plain function (the CLI, tests and sweepers call it).

The steps are named helpers: resolve and validate the run once (:func:`genlab.run.config.resolve_run`), plan
the resume (:mod:`genlab.run.resume`: what the checkpoint allows to change), take the run directory (lock, stale temp files, recorded
config, status), build the datamodule, model, loggers, callbacks and trainer from the typed configs, fit,
and record how the run ended (``metrics.json`` and ``status.json``).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import yaml
from lightning_fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig
from pytorch_lightning.loggers import WandbLogger

from genlab.checkpoint import read_checkpoint, run_record
from genlab.run.callbacks import CALLBACKS, Checkpoint, ImageGrids, ProgressBar
from genlab.run.callbacks.checkpoint_io import AtomicCheckpointIO
from genlab.run.callbacks.interrupt import GracefulInterrupt
from genlab.run.callbacks.lifecycle import (
    ApplyResumeSettings,
    DivergenceGuard,
    FlushLoggers,
    RngState,
    RunRecordWriter,
)
from genlab.run.callbacks.summary import ModelSummary
from genlab.run.config import RunConfig, resolve_run
from genlab.run.loggers import RunContext, RunTensorBoardLogger
from genlab.run.resume import ResumePlan, plan_resume, rewind
from genlab.run.sections import strategy_for
from genlab.run.summary import summary_lines
from genlab.utils.atomic import write_text_atomic
from genlab.utils.errors import ConfigError, GenlabError, RunInterrupted, TrainingDiverged
from genlab.utils.hydra_context import hydra_config_yaml, job_tag, sweep_and_job, task_overrides
from genlab.utils.ranks import is_worker
from genlab.utils.resources import check_run_fits
from genlab.utils.rundir import (
    LOCK_NAME,
    LOG_NAME,
    STATUS_NAME,
    RunLock,
    check_run_dir,
    clean_stale_temps,
    has_run_record,
    read_status,
    write_status,
)
from genlab.utils.threads import use_threads

log = logging.getLogger("genlab")
# Lightning advice that does not apply to genlab runs (GAN checkpoints are taken between steps on purpose)
warnings.filterwarnings("ignore", message=".*ModelCheckpoint with manual optimization.*")
warnings.filterwarnings("ignore", message=".*LeafSpec.*")
warnings.filterwarnings("ignore", message=".*does not have many workers.*")
warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")


def plain(value: Any) -> Any:
    """Tensors/numpy scalars -> Python numbers, for metrics.json and sweepers."""
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    return value


# ---- the run directory ------------------------------------------------------------------------------
def record_config(run_dir: Path, cfg: DictConfig) -> None:
    """``.hydra/``: the composed config, the overrides (what ``resume=`` replays) and Hydra's own config."""
    from omegaconf import OmegaConf

    hydra_dir = run_dir / ".hydra"
    hydra_dir.mkdir(parents=True, exist_ok=True)
    files = {"config.yaml": OmegaConf.to_yaml(cfg), "overrides.yaml": yaml.safe_dump(task_overrides())}
    hydra = hydra_config_yaml()
    if hydra is not None:
        files["hydra.yaml"] = hydra
    for name, text in files.items():
        write_text_atomic(hydra_dir / name, text)


# ---- building -----------------------------------------------------------------------------------
def build_loggers(run: RunConfig, resume: ResumePlan | None) -> list:
    sweep, job = sweep_and_job()
    run_dir = Path(run.paths.run_dir)
    tags = {
        "genlab.family": run.model_family,
        "genlab.dataset": run.dataset.name,
        "genlab.run_dir": str(run_dir),
    }
    tags |= {"genlab.sweep": sweep, "genlab.job": job} if sweep else {}
    context = RunContext(
        run_dir, Path(run.paths.output_dir), resume.step if resume else None, sweep, job, tags
    )
    return [config.build(context) for config in run.loggers.values()]


def build_callbacks(run: RunConfig) -> list[pl.Callback]:
    callbacks = []
    for name, config in run.callbacks.items():
        cls = CALLBACKS[name]
        if cls is Checkpoint and not run.trainer.enable_checkpointing:
            continue
        if cls is ProgressBar and not run.trainer.enable_progress_bar:
            continue
        if cls is ModelSummary and not run.trainer.enable_model_summary:
            continue
        callbacks.append(cls(config))
    return callbacks


def build_trainer(run: RunConfig, loggers: list, callbacks: list) -> pl.Trainer:
    strategy = strategy_for(run.trainer, run.model_class.ddp_unused_parameters, machine_devices(run.trainer))
    if strategy != run.trainer.strategy:
        log.info(
            "%strainer.strategy: %s (%s)", job_tag(), strategy, "the model leaves parameters unused per step"
        )
    try:
        return pl.Trainer(
            **{**asdict(run.trainer), "strategy": strategy},
            default_root_dir=run.paths.run_dir,
            logger=loggers or False,
            callbacks=callbacks,
            plugins=[AtomicCheckpointIO()],
        )
    except (ValueError, RuntimeError, TypeError, MisconfigurationException) as e:  # e.g. an unusable strategy
        first = " ".join(str(e).split())[:200]
        raise ConfigError(f"trainer: {first} (see trainer=cpu|gpu|ddp|ddp_cpu)") from e


def machine_devices(trainer) -> int | None:
    """How many devices ``devices=-1``/``auto`` means on this machine (None where the config says)."""
    if trainer.world_size() is not None:
        return None
    return torch.cuda.device_count() if trainer.accelerator in ("gpu", "cuda", "auto") else None


def build(run: RunConfig) -> tuple[pl.LightningDataModule, pl.LightningModule]:
    """The datamodule and model of a resolved run (no Trainer)."""
    return run.dataset_class(run.dataset, run.data), run.model_class(run.model, run.data, run.optimizer)


# ---- the run --------------------------------------------------------------------------------------
def train(cfg: DictConfig, extra_callbacks: list[pl.Callback] | None = None) -> dict[str, Any]:
    """Validate, fit, write ``metrics.json``; return the final metrics.

    The returned dict holds every logged metric plus ``optimized_metric`` (the value a sweeper optimizes,
    None if the config names none), ``run_dir`` and ``status``.
    """
    run = resolve_run(cfg)
    check_run_fits(run)
    resume = plan_resume(run)
    run_dir = Path(run.paths.run_dir)
    if is_worker(run.trainer.world_size()):  # torchrun/srun/ddp rank > 0: rank 0 owns the run directory
        return fit(run, run_dir, resume, extra_callbacks or [])
    check_run_dir(run_dir)  # before the lock file: a link there would be written through
    with RunLock(run_dir):
        if resume is None:
            refuse_overwrite(run_dir)
        fresh = is_fresh(run_dir)
        clean_stale_temps(run_dir)
        record_config(run_dir, cfg)
        write_status(run_dir, "running", step=resume.step if resume else 0, started=_now())
        try:
            return fit(run, run_dir, resume, extra_callbacks or [])
        except TrainingDiverged as e:
            write_status(run_dir, "diverged", error=" ".join(str(e).split()))
            raise
        except RunInterrupted:
            raise
        except GenlabError as e:
            if fresh and not any(run_dir.glob("checkpoints/*.ckpt")):
                discard(run_dir)  # a mistake found while starting: no half-made run directory
            else:
                write_status(run_dir, "failed", error=" ".join(str(e).split())[:500])
            raise
        except BaseException as e:
            write_status(run_dir, "failed", error=" ".join(str(e).split())[:500] or type(e).__name__)
            raise


def refuse_overwrite(run_dir: Path) -> None:
    """A new run never goes into a directory that holds a run: its checkpoints, record and events would be
    replaced or mixed."""
    if has_run_record(run_dir):
        raise ConfigError(
            f"run dir {run_dir} already holds a run ({STATUS_NAME}: {read_status(run_dir)['status']}); continue "
            f"it with genlab train resume={run_dir}, or choose a fresh directory (hydra.run.dir=<new dir>)"
        )


def is_fresh(run_dir: Path) -> bool:
    """Whether the run directory holds nothing but what this command created (its lock and log)."""
    return all(p.name in (LOCK_NAME, LOG_NAME) for p in run_dir.iterdir())


def discard(run_dir: Path) -> None:
    for path in run_dir.iterdir():
        if path.name == LOCK_NAME:
            continue
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def _now() -> str:
    from datetime import datetime

    return datetime.now().astimezone().isoformat(timespec="seconds")


def fit(run: RunConfig, run_dir: Path, resume: ResumePlan | None, extra: list[pl.Callback]) -> dict[str, Any]:
    pl.seed_everything(run.seed, workers=True)
    started = time.monotonic()
    per_node = (run.trainer.world_size() or run.trainer.num_nodes) // run.trainer.num_nodes
    threads = use_threads(run.settings.threads, processes=per_node)
    chosen = "" if run.settings.threads else " (the cores free now; threads=N sets it)"
    log.info("%storch threads: %d%s", job_tag(), threads, chosen)
    if resume is not None:
        if not is_worker(run.trainer.world_size()):
            rewind(run_dir, resume)
        for change in resume.changes:
            log.info("resume: %s", change)
    log.info("%srun dir: %s", job_tag(), run_dir.resolve())
    datamodule, model = build(run)
    loggers = build_loggers(run, resume)
    interrupt = GracefulInterrupt()
    guard = DivergenceGuard()
    lifecycle = [RngState(), guard, RunRecordWriter(run_record(run)), FlushLoggers(), interrupt]
    if resume is not None and any(resume.optimizer_settings):
        lifecycle.append(ApplyResumeSettings(resume.optimizer_settings))
    trainer = build_trainer(run, loggers, [*build_callbacks(run), *lifecycle, *extra])
    start_loggers(run, loggers)
    last_validation = LastValidationStep()
    trainer.callbacks.append(last_validation)
    trainer.fit(model, datamodule=datamodule, ckpt_path=str(resume.path) if resume else None)

    metrics = {k: plain(v) for k, v in trainer.callback_metrics.items()}
    stopped = interrupt.signum is not None
    if (
        trainer.limit_val_batches
        and last_validation.step != trainer.global_step
        and not trainer.interrupted
        and not stopped
    ):
        # the final metrics (metrics.json, the sweeper's value) describe the final model
        trainer.validate(model, datamodule=datamodule, verbose=False)
        metrics.update({k: plain(v) for k, v in trainer.callback_metrics.items()})
    log_final_images(trainer, model)
    metrics["global_step"] = trainer.global_step or saved_step(trainer)
    status = "interrupted" if stopped else "finished"
    metrics["status"] = status
    if trainer.is_global_zero:
        finish_loggers(loggers, status)
        write_text_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=2, sort_keys=True))
        write_status(run_dir, status, step=metrics["global_step"])
    if stopped:
        raise RunInterrupted(
            f"{interrupt.signal_name}: interrupted at step {metrics['global_step']}; continue with: "
            f"genlab train resume={run_dir}",
            exit_code=interrupt.exit_code,
        )
    name = run.settings.optimized_metric
    if name and name not in metrics:
        raise ConfigError(
            f"optimized_metric={name!r} was not logged; logged metrics: {', '.join(sorted(metrics))}"
        )
    metrics["optimized_metric"] = metrics.get(name) if name else None
    metrics["run_dir"] = str(run_dir)
    if trainer.is_global_zero:
        for line in summary_lines(run_dir.resolve(), metrics, name, time.monotonic() - started):
            log.info("%s%s", job_tag(), line)
    return metrics


def start_loggers(run: RunConfig, loggers: list) -> None:
    """Record the run's hyperparameters: TensorBoard's HParams tab compares runs by them."""
    params = flat_hparams(run)
    for lg in loggers:
        if isinstance(lg, RunTensorBoardLogger):
            lg.log_session_start(params)
        else:
            lg.log_hyperparams(params)


def finish_loggers(loggers: list, status: str) -> None:
    """Each logger's run ends with genlab's status (a tracker's own words for it: an interrupted run was killed)."""
    for lg in loggers:
        if isinstance(lg, RunTensorBoardLogger):
            lg.log_session_end(status)
        lg.finalize("success" if status == "finished" else "KILLED" if status == "interrupted" else status)
        if isinstance(lg, WandbLogger):  # a process running many jobs (a sweep) ends each W&B run
            lg.experiment.finish(exit_code=0 if status == "finished" else 1)


def log_final_images(trainer: pl.Trainer, model: pl.LightningModule) -> None:
    """The final model's grids: after the final validation, so the VAE's reconstructions are in them."""
    for callback in trainer.callbacks:
        if isinstance(callback, ImageGrids):
            callback.log_panels(trainer, model)


class LastValidationStep(pl.Callback):
    """Remembers the training step of the latest validation run."""

    step = -1

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.step = trainer.global_step


def saved_step(trainer: pl.Trainer) -> int:
    """The final step as saved in last.ckpt: after spawned DDP workers the main process's loops never ran."""
    ckpt = getattr(trainer.checkpoint_callback, "last_model_path", "") or ""
    last = Path(ckpt) if ckpt else Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"
    if not last.is_file():
        return 0
    return int(read_checkpoint(last).get("global_step", 0))


def flat_hparams(run: RunConfig) -> dict[str, Any]:
    """Scalar hyperparameters for TensorBoard's HParams tab (dataset/model/optimizer/trainer keys, seed)."""
    out: dict[str, Any] = {"seed": run.seed}
    plain_run = run.to_plain()
    for group in ("dataset", "model", "optimizer", "trainer"):
        for k, v in plain_run[group].items():
            if isinstance(v, bool | int | float | str) and k != "data_dir":
                out[f"{group}.{k}"] = v
            elif isinstance(v, list):
                out[f"{group}.{k}"] = str(v)
    return out


def train_task(cfg: DictConfig) -> float | None:
    """The Hydra job behind ``genlab train``: returns the optimized metric (what a sweeper minimizes)."""
    return train(cfg)["optimized_metric"]

"""Every ``pytorch_lightning.Trainer`` argument works through ``trainer.*`` (genlab/run/sections.py), and the
``debug=*`` presets run."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from runs_util import RING_GAN, run_cli

from genlab.commands.compose import compose_config
from genlab.run.sections import OWNED, TrainerConfig, strategy_for
from genlab.run.train import train

# The Trainer arguments genlab was written against. A Lightning upgrade that adds or renames one fails here:
# check how genlab should treat it (its type from the annotation, a genlab default in DEFAULTS, a check in
# TrainerChecks, or an argument genlab passes itself in OWNED), then add it to this list.
LIGHTNING_ARGS = {
    "accelerator", "strategy", "devices", "num_nodes", "precision", "logger", "callbacks", "fast_dev_run",
    "max_epochs", "min_epochs", "max_steps", "min_steps", "max_time", "limit_train_batches", "limit_val_batches",
    "limit_test_batches", "limit_predict_batches", "overfit_batches", "val_check_interval",
    "check_val_every_n_epoch", "num_sanity_val_steps", "log_every_n_steps", "enable_checkpointing",
    "enable_progress_bar", "enable_model_summary", "accumulate_grad_batches", "gradient_clip_val",
    "gradient_clip_algorithm", "deterministic", "benchmark", "inference_mode", "use_distributed_sampler",
    "profiler", "detect_anomaly", "barebones", "plugins", "sync_batchnorm", "reload_dataloaders_every_n_epochs",
    "default_root_dir", "enable_autolog_hparams", "model_registry",
}  # fmt: skip


class Seen(pl.Callback):
    """What the Trainer was built with, read when fitting starts (and whether a training step detects anomalies)."""

    anomaly = False

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.anomaly = torch.is_anomaly_enabled()

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.trainer: dict[str, Any] = {
            "fast_dev_run": trainer.fast_dev_run,
            "limit_train_batches": trainer.limit_train_batches,
            "overfit_batches": trainer.overfit_batches,
            "min_steps": trainer.fit_loop.min_steps,
            "profiler": type(trainer.profiler).__name__,
            "max_time": next(
                (round(c.time_remaining()) for c in trainer.callbacks if type(c).__name__ == "Timer"), None
            ),
        }


def fit(tmp_path, *overrides: str) -> tuple[dict[str, Any], dict[str, Any]]:
    seen = Seen()
    cfg = compose_config("train", [*RING_GAN, "threads=1", *overrides], run_dir=tmp_path / "run")
    metrics = train(cfg, extra_callbacks=[seen])
    return {**seen.trainer, "anomaly": seen.anomaly}, metrics


def test_the_schema_has_every_lightning_argument():
    names = {n for n in inspect.signature(pl.Trainer.__init__).parameters if n != "self"}
    assert names == LIGHTNING_ARGS, f"Lightning's Trainer arguments changed: {sorted(names ^ LIGHTNING_ARGS)}"
    assert {f.name for f in __import__("dataclasses").fields(TrainerConfig)} == names - set(OWNED)


def test_arguments_genlab_never_listed_pass_through_a_real_run(tmp_path):
    seen, metrics = fit(
        tmp_path,
        "trainer.limit_train_batches=7",
        "trainer.min_steps=12",
        "trainer.max_steps=12",
        "trainer.max_time=00:01:00:00",
        "trainer.detect_anomaly=true",
        "trainer.val_check_interval=6",
    )
    assert seen["limit_train_batches"] == 7 and seen["min_steps"] == 12 and seen["anomaly"]
    assert seen["max_time"] == 3600
    assert metrics["global_step"] == 12 and metrics["status"] == "finished"


@pytest.mark.parametrize(
    ("preset", "check"),
    [
        ("fdr", lambda seen, m: seen["fast_dev_run"] == 1 and m["global_step"] == 1),
        ("limit", lambda seen, m: seen["limit_train_batches"] == 10 and m["global_step"] == 30),
        ("overfit", lambda seen, m: seen["overfit_batches"] == 1 and m["global_step"] == 200),
        ("profiler", lambda seen, m: seen["profiler"] == "SimpleProfiler" and m["global_step"] == 50),
    ],
)
def test_debug_presets_run(tmp_path, preset, check):
    seen, metrics = fit(tmp_path, f"debug={preset}")
    assert metrics["status"] == "finished" and check(seen, metrics), (seen, metrics["global_step"])


@pytest.mark.parametrize(
    ("arg", "needle"),
    [
        ("trainer.limit_train_batchs=5", "did you mean limit_train_batches?"),
        ("trainer.precision=bf17", "trainer.precision='bf17' has the wrong type: expected 64 | 32 | 16"),
        ("trainer.profiler=3", "trainer.profiler=3 has the wrong type: expected str | null"),
        ("trainer.max_time=[1]", "trainer.max_time=[1] has the wrong type"),
    ],
)
def test_a_mistake_in_a_trainer_argument_is_one_line(tmp_path, capsys, arg, needle):
    code, _, err = run_cli(capsys, "train", *RING_GAN, f"hydra.run.dir={tmp_path / 'run'}", arg)
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["trainer.accumulate_grad_batches=2"], "use a larger dataset.batch_size instead"),
        (["trainer.gradient_clip_val=1.0"], "use model.grad_clip=1.0 instead"),
        (["model.pack=32", "dataset.batch_size=16"], "model.pack=32 is larger than the batch"),
        (
            ["trainer.strategy=ddp_find_unused_parameters_false"],
            "use trainer.strategy=ddp_find_unused_parameters_true",
        ),
    ],
)
def test_trainer_arguments_the_gan_cannot_use_leave_no_run_dir(tmp_path, capsys, args, needle):
    code, _, err = run_cli(capsys, "train", *RING_GAN, f"hydra.run.dir={tmp_path / 'run'}", *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("strategy", "devices", "family_needs", "expected"),
    [
        ("ddp", 2, True, "ddp_find_unused_parameters_true"),
        ("ddp_spawn", 2, True, "ddp_spawn_find_unused_parameters_true"),
        ("auto", 2, True, "ddp_find_unused_parameters_true"),
        ("auto", 1, True, "auto"),
        ("ddp", 2, False, "ddp"),
        ("ddp_find_unused_parameters_true", 2, True, "ddp_find_unused_parameters_true"),
    ],
)
def test_the_family_decides_what_ddp_needs(strategy, devices, family_needs, expected):
    trainer = TrainerConfig(strategy=strategy, devices=devices, accelerator="cpu")
    assert strategy_for(trainer, family_needs) == expected


def test_the_checkpoint_config_has_every_model_checkpoint_argument():
    from pytorch_lightning.callbacks import ModelCheckpoint

    from genlab.run.callbacks.checkpoint import OWNED as CHECKPOINT_OWNED
    from genlab.run.callbacks.checkpoint import CheckpointConfig

    names = {n for n in inspect.signature(ModelCheckpoint.__init__).parameters if n != "self"}
    fields = {f.name for f in __import__("dataclasses").fields(CheckpointConfig)}
    assert fields == names - set(CHECKPOINT_OWNED)
    assert CheckpointConfig(save_weights_only=True).save_weights_only is True

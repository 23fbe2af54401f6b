"""`genlab eval`'s metrics during training, logged as ``val/<metric>`` (checkpoint monitor, sweep objective).

Runs after every ``every_n_validations``-th validation round (one round per ``trainer.val_check_interval``
steps) on samples of the model being trained, against real samples of the run's datamodule, with the same
:class:`~genlab.metrics.suite.EvalPlan` that `genlab eval` uses. Metrics the model family already logs
itself (the VAE's likelihoods) are not repeated. With ``monitor: val/<metric>`` on the checkpoint callback,
keep ``every_n_validations: 1`` so the key exists whenever a checkpoint is considered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl

from genlab.config.schema import check_at_least, check_choice
from genlab.metrics.features import FEATURE_EXTRACTORS
from genlab.metrics.suite import EvalPlan


@dataclass(frozen=True)
class EvalMetricsConfig:
    """``callbacks.eval_metrics``."""

    # auto, or a list of: fid, kid, is, prdc, class_kl, modes, likelihood, conditional_accuracy, intra_fid
    metrics: Any = "auto"
    # generated samples per round (null: the `genlab eval` default for the data kind)
    n_samples: int | None = None
    # inception | classifier; null: classifier when classifier_ckpt is set
    features: str | None = None
    classifier_ckpt: str | None = None  # a `genlab train model=classifier` checkpoint (its features)
    inception_weights: str | None = None  # local torch-fidelity Inception weights file
    # evaluate after every N-th validation round
    every_n_validations: int = 1
    split: str = "test"  # real reference split of the run's dataset
    batch_size: int = 250  # samples per forward pass
    seed: int = 0  # same seed, same generated samples every round

    def __post_init__(self) -> None:
        if self.n_samples is not None:
            check_at_least("callbacks.eval_metrics.n_samples", self.n_samples, 6, 2000)
        if self.features is not None:
            check_choice("callbacks.eval_metrics.features", self.features, FEATURE_EXTRACTORS)
        check_at_least("callbacks.eval_metrics.every_n_validations", self.every_n_validations, 1, 1)
        check_choice("callbacks.eval_metrics.split", self.split, ("train", "test"))
        check_at_least("callbacks.eval_metrics.batch_size", self.batch_size, 1, 250)


class EvalMetrics(pl.Callback):
    config_class = EvalMetricsConfig

    def __init__(self, config: EvalMetricsConfig) -> None:
        self.config = config
        self._rounds = 0
        self.plan: EvalPlan | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or self.plan is not None:
            return
        # fail at startup, not at the first validation, on impossible metrics or missing weights/classifier
        cfg = self.config
        self.plan = EvalPlan.build(
            pl_module,
            trainer.datamodule,
            cfg.metrics,
            cfg.features,
            cfg.classifier_ckpt,
            cfg.inception_weights,
            cfg.n_samples,
            cfg.split,
            cfg.batch_size,
            cfg.seed,
            exclude=("likelihood",),
            device=pl_module.device,
        )

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.plan is None or not self.plan.names:
            return
        self._rounds += 1
        if self._rounds % self.config.every_n_validations:
            return
        for key, value in self.plan.run(pl_module).items():
            if isinstance(value, int | float):
                pl_module.log(f"val/{key}", float(value))

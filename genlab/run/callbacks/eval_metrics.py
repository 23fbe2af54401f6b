"""`genlab eval`'s metrics during training, logged as ``val/<metric>`` (checkpoint monitor, sweep objective).

Runs after every ``every_n_validations``-th validation round (one round per ``trainer.val_check_interval``
steps) on samples of the model being trained, against real samples of the run's datamodule, with the same
request and :class:`~genlab.metrics.suite.EvalPlan` that `genlab eval` uses. Metrics the model family already
logs itself (the VAE's likelihoods) are not repeated. With ``monitor: val/<metric>`` on the checkpoint callback,
keep ``every_n_validations: 1`` so the key exists whenever a checkpoint is considered.

A round's figures are computed once: the health monitor's mode-collapse check reads the same 2D mode coverage
(:func:`round_mode_coverage`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from genlab.checkpoint import load_run
from genlab.config.schema import check_at_least
from genlab.metrics.catalogue import CATALOGUE
from genlab.metrics.request import CLASSIFIER_HINT, EvalRequest, ResolvedRequest
from genlab.metrics.suite import EvalPlan
from genlab.models.capabilities import FeatureNet
from genlab.utils.errors import ConfigError

TRAINING_ONLY = tuple(name for name, metric in CATALOGUE.items() if metric.logged_in_training)


@dataclass(frozen=True)
class EvalMetricsConfig(EvalRequest):
    """``callbacks.eval_metrics``: the evaluation request plus how often it runs."""

    KEY = "callbacks.eval_metrics"

    # evaluate after every N-th validation round
    every_n_validations: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_at_least(self.key("every_n_validations"), self.every_n_validations, 1, 1)


def load_classifier(resolved: ResolvedRequest, device: torch.device | str) -> nn.Module | None:
    """The network of the request's ``classifier_ckpt`` when its metrics read a classifier's features, else
    None: checkpoints are loaded here (by genlab.checkpoint), and metrics receive the built network."""
    if not resolved.needs_classifier:
        return None
    request = resolved.request
    key, path = request.key("classifier_ckpt"), request.classifier_ckpt
    model = load_run(path, device=device, key=key).model
    if not isinstance(model, FeatureNet):
        family = getattr(model, "family", "?")
        raise ConfigError(f"{key}={path} is a {family} checkpoint, not a classifier; {CLASSIFIER_HINT}")
    return model


class EvalMetrics(pl.Callback):
    config_class = EvalMetricsConfig

    def __init__(self, config: EvalMetricsConfig) -> None:
        self.config = config
        self._rounds = 0
        self.plan: EvalPlan | None = None
        self._latest: tuple[int, dict[str, Any]] | None = None  # (global step, figures) of the last round

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or self.plan is not None:
            return
        # fail at startup, not at the first validation, on impossible metrics or missing weights/classifier
        resolved = self.config.resolve(pl_module, exclude=TRAINING_ONLY)
        classifier = load_classifier(resolved, pl_module.device)
        self.plan = EvalPlan.build(resolved, pl_module, trainer.datamodule, pl_module.device, classifier)

    def figures(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        """Every planned metric of the model as it is at this step, computed once per step."""
        if self.plan is None or not self.plan.names:
            return {}
        if self._latest is None or self._latest[0] != trainer.global_step:
            self._latest = (trainer.global_step, self.plan.run(pl_module))
        return self._latest[1]

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.plan is None or not self.plan.names:
            return
        self._rounds += 1
        if self._rounds % self.config.every_n_validations:
            return
        for key, value in self.figures(trainer, pl_module).items():
            if isinstance(value, int | float):
                pl_module.log(f"val/{key}", float(value))


MODE_KEYS = ("modes_covered", "hq_fraction", "num_modes")


def round_mode_coverage(
    trainer: pl.Trainer, pl_module: pl.LightningModule, fallback: EvalMetrics
) -> dict[str, float] | None:
    """The 2D mode coverage of this validation round (None for data without known modes): the eval callback's
    figures when it computes ``modes`` (logged as ``val/modes_covered``, ``val/hq_fraction``), else the same
    evaluation with the request's defaults through ``fallback``, an :class:`EvalMetrics` nobody logs from."""
    dm = trainer.datamodule
    if pl_module.spec.is_image or getattr(dm, "modes", None) is None or getattr(dm, "mode_std", None) is None:
        return None
    source = next(
        (
            cb
            for cb in trainer.callbacks
            if isinstance(cb, EvalMetrics) and cb.plan is not None and "modes" in cb.plan.names
        ),
        fallback,
    )
    source.setup(trainer, pl_module, "fit")
    figures = source.figures(trainer, pl_module)
    return {key: float(figures[key]) for key in MODE_KEYS}


def mode_coverage_fallback() -> EvalMetrics:
    """The evaluation behind :func:`round_mode_coverage` when no eval callback computes modes."""
    return EvalMetrics(EvalMetricsConfig(metrics=["modes"]))

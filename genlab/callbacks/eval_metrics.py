"""`genlab eval`'s metrics during training, logged as ``val/<metric>`` (checkpoint monitor, sweep objective).

Runs after every ``every_n_validations``-th validation round (one round per ``trainer.val_check_interval``
steps) on samples of the model being trained, against real samples of the run's datamodule. Metrics the
model family already logs itself (the VAE's likelihoods, the GAN's 2D mode coverage) are not repeated.
With ``monitor: val/<metric>`` on the checkpoint callback, keep ``every_n_validations: 1`` so the key
exists whenever a checkpoint is considered.
"""

from __future__ import annotations

import logging

import pytorch_lightning as pl

from genlab.errors import ConfigError
from genlab.metrics.features import build_extractor
from genlab.metrics.suite import (
    DEFAULT_SAMPLES,
    Reference,
    auto_metrics,
    check_metrics,
    compute_metrics,
    data_kind,
    default_features,
    needs_features,
)

log = logging.getLogger("genlab")


class EvalMetrics(pl.Callback):
    def __init__(
        self,
        metrics: str | list[str] = "auto",
        n_samples: int | None = None,
        features: str | None = None,
        classifier_ckpt: str | None = None,
        inception_weights: str | None = None,
        every_n_validations: int = 1,
        split: str = "test",
        batch_size: int = 250,
        seed: int = 0,
    ) -> None:
        if every_n_validations < 1:
            raise ConfigError(
                f"callbacks.eval_metrics.every_n_validations={every_n_validations} must be >= 1"
            )
        self.metrics = metrics
        self.n_samples = n_samples
        self.features = default_features(features, classifier_ckpt)
        self.classifier_ckpt = classifier_ckpt
        self.inception_weights = inception_weights
        self.every = every_n_validations
        self.split = split
        self.batch_size = batch_size
        self.seed = seed
        self._rounds = 0
        self._names: list[str] | None = None
        self._extractor = None
        self._reference: Reference | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        # fail at startup, not at the first validation, on impossible metrics or missing weights/classifier
        if self.metrics == "auto":
            self._names = [n for n in auto_metrics(pl_module, self.features) if n != "likelihood"]
            if data_kind(pl_module.spec) == "vector":
                self._names = []
        else:  # one name (metrics=fid) or a list (metrics=[fid,kid])
            self._names = [self.metrics] if isinstance(self.metrics, str) else list(self.metrics)
        check_metrics(self._names, pl_module, self.features)
        if needs_features(self._names, pl_module):
            self._extractor = build_extractor(
                self.features,
                pl_module.spec.channels,
                self.classifier_ckpt,
                self.inception_weights,
                pl_module.device,
            )

    def reference(self, trainer: pl.Trainer, n: int) -> Reference:
        if self._reference is None:
            self._reference = Reference.from_datamodule(trainer.datamodule, self.split, n, self.seed)
        return self._reference

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not self._names:
            return
        self._rounds += 1
        if self._rounds % self.every:
            return
        n = self.n_samples or DEFAULT_SAMPLES[data_kind(pl_module.spec)]
        if self._extractor is not None:
            self._extractor.to(pl_module.device)
        results = compute_metrics(
            pl_module, self.reference(trainer, n), self._names, n, self._extractor, self.batch_size, self.seed
        )
        for key, value in results.items():
            if isinstance(value, int | float):
                pl_module.log(f"val/{key}", float(value))

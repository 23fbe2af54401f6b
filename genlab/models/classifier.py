"""A small CNN digit classifier, trained with `genlab train model=classifier dataset=mnist`.

It is the feature extractor of evaluation where Inception is meaningless or absent (MNIST-like data):
``features(x)`` gives its penultimate activations (FID/KID/PRDC in its feature space) and ``logits(x)``
its class predictions (class histogram, stacked-MNIST mode counting). It shares genlab's model
plumbing (typed config, hparams, checkpoints) but generates nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from genlab.config.spec import DataSpec
from genlab.models.base import GenlabModule
from genlab.models.capabilities import FeatureNet
from genlab.models.optim import OptimizerConfig
from genlab.utils.errors import ConfigError

POOLED = 4  # spatial size after the adaptive pool


@dataclass(frozen=True)
class ClassifierConfig:
    # channels of the first conv block; doubled in each of the next two blocks
    width: int = 16
    dropout: float = 0.2  # dropout before the last linear layer
    label_smoothing: float = 0.0  # label smoothing of the cross-entropy loss
    # the metric the checkpoint callback / sweeper should watch (higher is better)
    monitor: str | None = "val/acc"

    resume_fixed: ClassVar[tuple[str, ...]] = ("width",)

    def __post_init__(self) -> None:
        if int(self.width) < 1:
            raise ConfigError(f"model.width={self.width} must be a positive integer (e.g. model.width=32)")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"model.dropout={self.dropout} must be in [0, 1) (e.g. model.dropout=0.2)")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"model.label_smoothing={self.label_smoothing} must be in [0, 1)")


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
    )


class Classifier(GenlabModule, FeatureNet):
    """Three conv blocks (2x2 max-pool after the first two), adaptive pooling to 4x4, two linear layers.

    The adaptive pool makes it size-agnostic (28 or 32 px alike); inputs are expected in [0, 1].
    """

    config_class = ClassifierConfig
    family = "classifier"

    def __init__(
        self, config: ClassifierConfig, data: DataSpec, optimizer: OptimizerConfig | None = None
    ) -> None:
        super().__init__(config, data, optimizer)
        w = int(self.config.width)
        self.body = nn.Sequential(
            conv_block(self.spec.channels, w),
            nn.MaxPool2d(2),
            conv_block(w, 2 * w),
            nn.MaxPool2d(2),
            conv_block(2 * w, 4 * w),
            nn.AdaptiveAvgPool2d(POOLED),
            nn.Flatten(),
            nn.Linear(4 * w * POOLED**2, 4 * w),
            nn.ReLU(inplace=True),
        )
        self.num_features = 4 * w
        self.head = nn.Sequential(
            nn.Dropout(self.config.dropout), nn.Linear(self.num_features, self.num_classes)
        )
        self.val_acc = MulticlassAccuracy(self.num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(self.num_classes, average="micro")

    # ---- config-time contract ----------------------------------------------------------------
    @classmethod
    def expected_value_range(cls, config) -> tuple[float, float] | None:
        return (0.0, 1.0)

    @classmethod
    def check_data(cls, config, spec: DataSpec) -> None:
        super().check_data(config, spec)
        if not spec.num_classes:
            raise ConfigError(
                f"model=classifier needs labeled images but dataset {spec.name} has no classes; use e.g. dataset=mnist"
            )

    # ---- the network -------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return int(self.spec.num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations (B, num_features) of images in [0, 1]."""
        return self.body(x)

    def classify(self, features: Tensor) -> Tensor:
        """Class logits from ``features(x)``."""
        return self.head(features)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (B, num_classes)."""
        return self.classify(self.features(x))

    # ---- training ----------------------------------------------------------------------------
    def training_step(self, batch, batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.config.label_smoothing)
        self.log("train/loss", loss, on_step=True, prog_bar=True)
        self.log("train/acc", (logits.argmax(1) == y).float().mean(), on_step=True)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_acc)

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_acc)

    def _evaluate(self, batch, stage: str, accuracy: MulticlassAccuracy) -> None:
        x, y = batch
        logits = self(x)
        self.log(f"{stage}/loss", F.cross_entropy(logits, y), batch_size=len(x), sync_dist=True)
        accuracy(logits, y)
        self.log(f"{stage}/acc", accuracy, prog_bar=stage == "val")

"""One evaluation request: what `genlab eval` and the training callback ask the metrics for, with one set of
bounds; and its resolution for one model (``auto`` metrics, default features and sample count, the memory check).

`genlab eval`'s ``eval:`` node (:class:`genlab.commands.evaluate.EvalConfig`) and ``callbacks.eval_metrics``
(:class:`genlab.run.callbacks.eval_metrics.EvalMetricsConfig`) extend :class:`EvalRequest` with their own keys;
``KEY`` is where each lives in the config, so every message names the key the user wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from genlab.config.schema import check_at_least, check_choice, check_seed, require, set_field
from genlab.metrics import catalogue
from genlab.metrics.features import FEATURE_EXTRACTORS
from genlab.utils.errors import ConfigError
from genlab.utils.resources import require_memory

SPLITS = ("train", "test", "val")
MIN_SAMPLES = 6  # PRDC's neighbourhoods need more than 5 samples on each side
CLASSIFIER_HINT = (
    "train one with `genlab train model=classifier dataset=<the run's dataset>` (dataset=mnist for "
    "stacked_mnist) and pass its checkpoints/last.ckpt"
)
STACKED_MODES = (
    "stacked_mnist mode counting needs a 1-channel digit classifier as {key}.classifier_ckpt "
    "(`genlab train model=classifier dataset=mnist`)"
)


@dataclass(frozen=True)
class EvalRequest:
    """The keys `genlab eval` and ``callbacks.eval_metrics`` share."""

    KEY: ClassVar[str] = "eval"

    metrics: Any = field(default="auto", metadata={"help": catalogue.METRICS_HELP})
    n_samples: int | None = field(default=None, metadata={"help": catalogue.SAMPLES_HELP})
    # inception | classifier; null: classifier when classifier_ckpt is set, else inception
    features: str | None = None
    # a `genlab train model=classifier` checkpoint: its features replace Inception's (MNIST-like data)
    classifier_ckpt: str | None = None
    # local torch-fidelity weights-inception-2015-12-05-6726825d.pth (else $GENLAB_INCEPTION_WEIGHTS, torch hub)
    inception_weights: str | None = None
    split: str = "test"  # real reference split of the run's dataset (train | test)
    batch_size: int = 250  # samples per forward pass
    seed: int = 0  # same seed, same samples and same numbers

    def key(self, name: str) -> str:
        return f"{self.KEY}.{name}"

    def __post_init__(self) -> None:
        if self.n_samples is not None:
            check_at_least(self.key("n_samples"), self.n_samples, MIN_SAMPLES, 2000)
        if self.features is not None:
            check_choice(self.key("features"), self.features, FEATURE_EXTRACTORS)
        check_choice(self.key("split"), self.split, SPLITS)
        check_at_least(self.key("batch_size"), self.batch_size, 1, 250)
        check_seed(self.key("seed"), self.seed, 0)
        self._check_metrics()
        self._check_classifier()

    def _check_metrics(self) -> None:
        if isinstance(self.metrics, str) and self.metrics != "auto":
            set_field(self, "metrics", [m.strip() for m in self.metrics.split(",") if m.strip()])
        require(
            self.metrics == "auto"
            or (
                isinstance(self.metrics, list)
                and self.metrics
                and all(isinstance(m, str) for m in self.metrics)
            ),
            f"{self.key('metrics')}={self.metrics!r} must be auto or a non-empty list of metric names",
        )
        if self.metrics != "auto":
            catalogue.check_known(self.metrics, self.key("metrics"))

    def _check_classifier(self) -> None:
        path = self.classifier_ckpt
        if self.features == "classifier" and not path:
            raise ConfigError(f"{self.key('classifier_ckpt')} is not set; {CLASSIFIER_HINT}")
        if path and not Path(path).is_file():
            raise ConfigError(f"{self.key('classifier_ckpt')}={path} does not exist; {CLASSIFIER_HINT}")

    def resolve(
        self, model: nn.Module, partial: bool = False, exclude: tuple[str, ...] = ()
    ) -> ResolvedRequest:
        """This request for ``model``: the metric names, the feature extractor they read and the sample count,
        checked against the model, its data and the memory available, before anything is loaded or drawn.

        ``partial``: under ``auto``, stacked-MNIST modes without a digit classifier are skipped (listed in
        ``skipped``) instead of refused. ``exclude``: metrics ``auto`` leaves out."""
        kind = catalogue.data_kind(model.spec)
        features = self.features or ("classifier" if self.classifier_ckpt else "inception")
        auto = self.metrics == "auto"
        names = (
            [n for n in catalogue.auto_metrics(model, features) if n not in exclude] if auto else self.metrics
        )
        catalogue.check_metrics(names, model, features, self.key("metrics"))
        skipped: dict[str, list[str]] = {}
        if kind == "stacked_mnist" and "modes" in names and features != "classifier":
            reason = STACKED_MODES.format(key=self.KEY)
            if not (partial and auto):
                raise ConfigError(reason)
            skipped[reason] = ["modes"]
            names = [n for n in names if n != "modes"]
        n = self.n_samples or catalogue.default_samples(names, kind)
        given = "" if self.n_samples else f" (the default for {kind} data)"
        # the generated and the real samples are held in memory at once
        require_memory(
            2 * n * model.spec.dim * 4,
            f"{self.key('n_samples')}={n}{given}",
            f"lower {self.key('n_samples')}",
        )
        reads = features if catalogue.uses_features(names, kind) else None
        return ResolvedRequest(self, tuple(names), reads, n, skipped, partial)


@dataclass(frozen=True)
class ResolvedRequest:
    """A request for one model: what :class:`~genlab.metrics.suite.EvalPlan` computes."""

    request: EvalRequest
    names: tuple[str, ...]
    features: str | None  # the feature extractor the metrics read; None when none does
    n_samples: int
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> metric names left out
    # features whose weights are nowhere to be found skip their metrics rather than fail, while others are left
    partial: bool = False

    @property
    def needs_classifier(self) -> bool:
        """Whether the caller must load ``classifier_ckpt`` and hand its network to the plan."""
        return self.features == "classifier"

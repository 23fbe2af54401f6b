"""The metric catalogue: every metric genlab computes, the keys it writes, which way they are better, how many
samples it draws by default and what it needs.

Read by the evaluation request (``auto`` selection, validation, default sample counts), by the training
callback, by ``genlab report`` (the direction of a ranking metric) and by the ``--help`` text of the metric keys.

Data kinds: ``image``, ``vector`` (2D mixtures) and ``stacked_mnist`` (three MNIST digits in the RGB channels).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from genlab.models.capabilities import LikelihoodModel
from genlab.utils.errors import ConfigError

KINDS = ("image", "vector", "stacked_mnist")
# generated samples by default, by data kind (the literature's protocols)
PROTOCOL_SAMPLES = {"image": 10_000, "vector": 2_500, "stacked_mnist": 26_000}
# what models log themselves during training (besides losses and the catalogue's keys), and which way is better
TRAINING_KEYS = {"acc": "max"}


@dataclass(frozen=True)
class Metric:
    name: str
    # the report keys it writes -> "max" or "min" (better), None for numbers that rank nothing (counts, spreads)
    keys: dict[str, str | None]
    summary: str
    kinds: tuple[str, ...]  # the data kinds it applies to
    auto_kinds: tuple[str, ...]  # the data kinds on which ``auto`` picks it
    # reads the images' features (eval.features); on stacked_mnist `modes` reads a digit classifier's
    features: bool = False
    classifier: bool = False  # the features must be a genlab classifier's
    auto_features: tuple[str, ...] = ("inception", "classifier")  # ``auto`` picks it with these features
    conditional: bool = False  # a class-conditional model
    likelihood: bool = False  # a model with a likelihood bound (VAE)
    # the model family logs it itself during training: the training callback leaves it out
    logged_in_training: bool = False
    samples: dict[str, int] = field(default_factory=lambda: dict(PROTOCOL_SAMPLES))

    def uses_features(self, kind: str) -> bool:
        return self.features or (self.name == "modes" and kind == "stacked_mnist")


IMAGES = ("image", "stacked_mnist")
CATALOGUE: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "modes",
            {"modes_covered": "max", "hq_fraction": "max", "num_modes": None, "mode_kl": "min"},
            "mode coverage: 2D mixtures (within 3 std of a mode) or stacked_mnist (1000 digit triples)",
            kinds=("vector", "stacked_mnist"),
            auto_kinds=("vector", "stacked_mnist"),
        ),
        Metric("fid", {"fid": "min"}, "Frechet distance of features", IMAGES, IMAGES, features=True),
        Metric(
            "kid",
            {"kid": "min", "kid_std": None},
            "kernel distance of features",
            IMAGES,
            IMAGES,
            features=True,
        ),
        Metric(
            "prdc",
            {"precision": "max", "recall": "max", "density": "max", "coverage": "max"},
            "precision, recall, density, coverage of features",
            IMAGES,
            IMAGES,
            features=True,
        ),
        Metric(
            "is",
            {"is": "max", "is_std": None},
            "Inception score",
            IMAGES,
            ("image",),
            features=True,
            auto_features=("inception",),
        ),
        Metric(
            "class_kl",
            {"class_kl": "min"},
            "KL of the classifier's class histogram on samples to that on data",
            IMAGES,
            ("image",),
            features=True,
            classifier=True,
        ),
        Metric(
            "conditional_accuracy",
            {"conditional_accuracy": "max"},
            "share of samples the classifier assigns to their requested class",
            IMAGES,
            ("image",),
            features=True,
            classifier=True,
            conditional=True,
        ),
        Metric(
            "intra_fid",
            {"intra_fid": "min", "intra_fid_per_class": None},
            "mean within-class FID",
            IMAGES,
            ("image",),
            features=True,
            conditional=True,
        ),
        Metric(
            "likelihood",
            {"neg_elbo": "min", "iw_nll": "min", "active_units": None},
            "VAE: negative ELBO, importance-weighted NLL bound, active latent units",
            KINDS,
            KINDS,
            likelihood=True,
            logged_in_training=True,
        ),
    )
}
NAMES = tuple(CATALOGUE)
METRICS_HELP = f"auto (by data kind and model), or a list of: {', '.join(NAMES)}"
SAMPLES_HELP = (
    "generated samples; null: the metrics' protocol ("
    + ", ".join(f"{n} for {kind} data" for kind, n in PROTOCOL_SAMPLES.items())
    + ")"
)


def direction(key: str) -> str | None:
    """Which way the logged or reported ``key`` (``val/fid``, ``eval/precision``, ``acc``) is better: "max",
    "min", or None when genlab does not produce it or it ranks nothing."""
    name = key.rsplit("/", 1)[-1]
    for metric in CATALOGUE.values():
        if name in metric.keys:
            return metric.keys[name]
    return TRAINING_KEYS.get(name)


def data_kind(spec) -> str:
    if not spec.is_image:
        return "vector"
    return "stacked_mnist" if spec.name == "stacked_mnist" else "image"


def is_conditional(model: nn.Module) -> bool:
    return bool(getattr(model, "conditional", False))


def check_known(names: list[str], key: str) -> None:
    """One line naming the catalogue's metrics when a name is not among them."""
    for name in names:
        if name not in CATALOGUE:
            raise ConfigError(f"{key}: {name!r} is not known; allowed: {', '.join(NAMES)} (or auto)")


def applies(metric: Metric, model: nn.Module) -> bool:
    return (not metric.conditional or is_conditional(model)) and (
        not metric.likelihood or isinstance(model, LikelihoodModel)
    )


def auto_metrics(model: nn.Module, features: str) -> list[str]:
    """The metrics ``auto`` picks for this model, its data and the feature extractor."""
    kind = data_kind(model.spec)
    return [
        m.name
        for m in CATALOGUE.values()
        if kind in m.auto_kinds
        and applies(m, model)
        and (not m.uses_features(kind) or features in m.auto_features)
        and (not m.classifier or features == "classifier")
    ]


def check_metrics(names: list[str], model: nn.Module, features: str, key: str) -> None:
    """ConfigError for metrics that are unknown or impossible for this model, data or feature extractor."""
    check_known(names, key)
    kind, spec = data_kind(model.spec), model.spec
    for metric in (CATALOGUE[n] for n in names):
        if kind not in metric.kinds:
            if kind == "vector":
                raise ConfigError(f"{key}: {metric.name} needs images but {spec.name} is 2D; use modes")
            raise ConfigError(f"{key}: {metric.name} is for 2D mixtures and stacked_mnist, not {spec.name}")
        if metric.likelihood and not isinstance(model, LikelihoodModel):
            raise ConfigError(f"{key}: {metric.name} needs a VAE checkpoint, this one is {model.family}")
        if metric.conditional and not is_conditional(model):
            raise ConfigError(
                f"{key}: {metric.name} needs a class-conditional checkpoint (model.conditional=true); "
                f"this {model.family} is unconditional"
            )
        if metric.classifier and features != "classifier":
            prefix = key.rsplit(".", 1)[0]
            raise ConfigError(
                f"{key}: {metric.name} needs {prefix}.features=classifier and {prefix}.classifier_ckpt "
                "(a classifier trained on the run's dataset)"
            )


def uses_features(names: list[str], kind: str) -> list[str]:
    """The metrics among ``names`` that read a feature extractor on data of this kind."""
    return [n for n in names if CATALOGUE[n].uses_features(kind)]


def default_samples(names: list[str], kind: str) -> int:
    """Generated samples when ``n_samples`` is not given: the most any of the metrics asks for."""
    return max((CATALOGUE[n].samples[kind] for n in names), default=PROTOCOL_SAMPLES[kind])

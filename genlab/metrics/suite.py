"""One evaluation pass: generate samples, compare them with real data, return named numbers.

Shared by ``genlab eval`` (:func:`genlab.commands.evaluate.evaluate`) and the training callback
(:class:`genlab.run.callbacks.eval_metrics.EvalMetrics`), so both report the same metrics the same way. The
metrics, the keys they write and what they need are listed in :mod:`genlab.metrics.catalogue`; what to compute
comes as a :class:`~genlab.metrics.request.ResolvedRequest`.

A conditional model's samples are drawn for the labels of the real reference (tiled to ``n_samples``), so both
sides have the same class frequencies and every class has its share of samples.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from genlab.metrics.catalogue import data_kind, is_conditional, uses_features
from genlab.metrics.classifier_stats import class_kl, conditional_accuracy, stacked_modes
from genlab.metrics.features import FeaturesUnavailable, build_extractor, extract
from genlab.metrics.fid import frechet_distance, inception_score, intra_fid, kernel_distance
from genlab.metrics.modes import mode_stats
from genlab.metrics.prdc import prdc
from genlab.metrics.request import STACKED_MODES, ResolvedRequest
from genlab.utils.errors import ConfigError
from genlab.utils.progress import Phases, items_in


def check_classifier_classes(extractor: nn.Module, model: nn.Module, key: str) -> None:
    """conditional_accuracy reads the classifier's class as the model's: both must be of the same dataset."""
    classifier = extractor.classifier
    spec = classifier.spec
    if extractor.groups != 1 or spec.name != model.spec.name or classifier.num_classes != model.num_classes:
        raise ConfigError(
            f"{key}.metrics: conditional_accuracy needs a classifier of the run's {model.num_classes} "
            f"{model.spec.name} classes, but {key}.classifier_ckpt classifies {spec.name} ({classifier.num_classes} "
            f"classes, {spec.channels} channel(s)); train one with `genlab train model=classifier "
            f"dataset={model.spec.name}`"
        )


@dataclass
class Reference:
    """The real side of the comparison: data-space samples plus, for 2D mixtures, the true modes.

    Features of the real samples are computed once per extractor and kept (every evaluation round of a
    training run compares against the same reference).
    """

    samples: Tensor
    modes: Tensor | None = None
    mode_std: float | None = None
    labels: Tensor | None = None  # the samples' classes (-1: unlabelled)
    _features: dict[int, tuple[Tensor, Tensor]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_datamodule(cls, dm, split: str, n: int, seed: int) -> Reference:
        """``n`` real samples of ``dm``'s ``split`` (at most the split's size for images) and their labels, drawn
        with ``seed + 1`` (``seed`` itself draws the generated samples): the same reference in training and in
        `genlab eval`."""
        if dm.spec.is_image:
            n = min(n, len(dm.labels(split)))
        real, labels = dm.real_labelled(n, split=split, generator=torch.Generator().manual_seed(seed + 1))
        return cls(real, modes=dm.modes, mode_std=dm.mode_std, labels=labels)

    def features(
        self, extractor: nn.Module, to_unit, batch_size: int, phases: Phases | None = None
    ) -> tuple[Tensor, Tensor]:
        key = id(extractor)
        if key not in self._features:
            phases = phases or Phases.off()
            with phases.phase("features of the real samples", len(self.samples), "samples") as p:
                batches = p.track(self.samples.split(batch_size), size=items_in)
                self._features[key] = extract(extractor, (to_unit(x) for x in batches))
        return self._features[key]


def generated_batches(
    model: nn.Module, n: int, batch_size: int, generator: torch.Generator, labels: Tensor | None = None
) -> Iterator[Tensor]:
    """``n`` samples of ``model`` in data space (of the classes ``labels``, for a conditional model),
    ``batch_size`` at a time, on the CPU."""
    for start in range(0, n, batch_size):
        k = min(batch_size, n - start)
        if labels is None:
            yield model.sample(k, generator=generator).float().cpu()
        else:
            yield model.sample(k, generator=generator, labels=labels[start : start + k]).float().cpu()


@dataclass
class EvalPlan:
    """What one evaluation computes and against what: built once, run as often as needed.

    ``genlab eval`` builds one and runs it once; the training-time callback builds one at startup and runs
    it every few validation rounds (the real reference and its features are computed once).
    """

    names: list[str]
    n_samples: int
    reference: Reference
    extractor: nn.Module | None = None
    features: str | None = None
    batch_size: int = 250
    seed: int = 0
    iw_samples: int = 100
    # metrics left out because what they need is not available: reason -> metric names
    skipped: dict[str, list[str]] = field(default_factory=dict)

    @property
    def generated(self) -> int:
        """Samples the plan generates (the likelihoods only read the real reference)."""
        return self.n_samples if any(name != "likelihood" for name in self.names) else 0

    @classmethod
    def build(
        cls,
        resolved: ResolvedRequest,
        model: nn.Module,
        datamodule,
        device: torch.device | str = "cpu",
        classifier: nn.Module | None = None,
        iw_samples: int = 100,
    ) -> EvalPlan:
        """Builds the feature extractor (around ``classifier``, the network of ``classifier_ckpt``, when the
        metrics read a classifier's features) and draws the real reference.

        Under ``resolved.partial``, metrics whose features are unavailable (no Inception weights found) are
        skipped and listed in ``skipped`` instead, as long as some metric is left to compute."""
        request, names = resolved.request, list(resolved.names)
        skipped = dict(resolved.skipped)
        extractor, kind = None, data_kind(model.spec)
        if resolved.features is not None:
            try:
                extractor = build_extractor(
                    resolved.features, model.spec.channels, classifier, request.inception_weights, device
                )
            except FeaturesUnavailable as e:
                reading = uses_features(names, kind)
                if not resolved.partial or len(reading) == len(names):
                    raise
                skipped[e.reason] = reading
                names = [n for n in names if n not in reading]
        if extractor is not None and "conditional_accuracy" in names:
            check_classifier_classes(extractor, model, request.KEY)
        if kind == "stacked_mnist" and "modes" in names and getattr(extractor, "groups", 1) == 1:
            raise ConfigError(STACKED_MODES.format(key=request.KEY))
        n = resolved.n_samples
        seed = request.seed
        reference = (
            Reference.from_datamodule(datamodule, request.split, n, seed)
            if names
            else Reference(torch.empty(0))
        )
        features = resolved.features if extractor is not None else None
        return cls(names, n, reference, extractor, features, request.batch_size, seed, iw_samples, skipped)

    @torch.no_grad()
    def run(self, model: nn.Module, phases: Phases | None = None) -> dict[str, Any]:
        """Every planned metric for ``n_samples`` samples of ``model`` against the reference; ``phases``
        announces each step with its time (silent by default, e.g. inside training)."""
        if not self.names:
            return {}
        if self.extractor is not None:
            self.extractor.to(model.device)
        # KID/IS draw their subsets from the global RNG: seed it, without disturbing a training run's stream
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return self._compute(model, torch.Generator().manual_seed(self.seed), phases or Phases.off())

    def generated_labels(self, model: nn.Module) -> Tensor | None:
        """The classes a conditional model's samples are drawn for: the reference's labels, tiled to
        ``n_samples`` (balanced classes when the reference has none); None for an unconditional model."""
        if not is_conditional(model):
            return None
        ref = self.reference.labels
        if ref is None or len(ref) == 0 or bool((ref < 0).any()):
            return torch.arange(self.n_samples) % int(model.num_classes)
        return ref.repeat(-(-self.n_samples // len(ref)))[: self.n_samples]

    def _generated(
        self, model: nn.Module, g: torch.Generator, progress, labels: Tensor | None = None
    ) -> Iterator[Tensor]:
        batches = generated_batches(model, self.n_samples, self.batch_size, g, labels)
        return progress.track(batches, size=items_in)

    def _compute(self, model: nn.Module, g: torch.Generator, phases: Phases) -> dict:
        results: dict[str, Any] = {}
        if uses_features(self.names, data_kind(model.spec)):
            results.update(self._feature_metrics(model, g, phases))
        elif "modes" in self.names:
            with phases.phase("generating samples", self.n_samples, "samples") as p:
                fake = torch.cat(list(self._generated(model, g, p, self.generated_labels(model))))
            with phases.phase("modes"):
                stats = mode_stats(fake, self.reference.modes, self.reference.mode_std)
            results.update(
                {k: stats[k] for k in ("modes_covered", "hq_fraction", "num_modes")},
                mode_counts=stats["counts"],
            )
        if "likelihood" in self.names:
            labels = self.reference.labels if is_conditional(model) else None
            results.update(
                likelihood_metrics(
                    model, self.reference.samples, self.iw_samples, self.batch_size, g, phases, labels
                )
            )
        return results

    def _feature_metrics(self, model: nn.Module, g: torch.Generator, phases: Phases) -> dict:
        names, extractor = self.names, self.extractor
        fake_y = self.generated_labels(model)
        with phases.phase(
            f"generating samples and their {self.features} features", self.n_samples, "samples"
        ) as p:
            batches = self._generated(model, g, p, fake_y)
            fake_f, fake_logits = extract(extractor, (model.to_unit(x) for x in batches))
        real_f, real_logits = self.reference.features(extractor, model.to_unit, self.batch_size, phases)
        out: dict[str, float | int] = {}
        if "fid" in names:
            with phases.phase("fid"):
                out["fid"] = frechet_distance(real_f, fake_f)
        if "kid" in names:
            with phases.phase("kid"):
                out["kid"], out["kid_std"] = kernel_distance(real_f, fake_f)
        if "is" in names:
            with phases.phase("is"):
                out["is"], out["is_std"] = inception_score(fake_logits[:, 0])
        if "prdc" in names:
            with phases.phase("prdc"):
                out.update(prdc(real_f, fake_f))
        if "class_kl" in names:
            with phases.phase("class_kl"):
                k = fake_logits.shape[-1]
                out["class_kl"] = class_kl(fake_logits[:, 0].argmax(-1), real_logits[:, 0].argmax(-1), k)
        if "conditional_accuracy" in names:
            with phases.phase("conditional_accuracy"):
                out["conditional_accuracy"] = conditional_accuracy(fake_logits[:, 0].argmax(-1), fake_y)
        if "intra_fid" in names:
            with phases.phase("intra_fid"):
                out["intra_fid"], out["intra_fid_per_class"] = intra_fid(
                    real_f, self.reference.labels, fake_f, fake_y, int(model.num_classes)
                )
        if "modes" in names:  # stacked MNIST: one digit per channel
            with phases.phase("modes"):
                stats = stacked_modes(fake_logits.argmax(-1), num_classes=fake_logits.shape[-1])
            out.update(
                modes_covered=stats["modes"],
                mode_kl=stats["kl_uniform"],
                num_modes=fake_logits.shape[-1] ** fake_logits.shape[1],
            )
        return out


def likelihood_metrics(
    model,
    data: Tensor,
    k: int,
    batch_size: int,
    generator: torch.Generator,
    phases: Phases | None = None,
    labels: Tensor | None = None,
) -> dict[str, float]:
    """VAE test metrics in nats per example: negative ELBO (one z sample, closed-form KL), the k-sample
    importance-weighted NLL bound, and the number of active latent units (Burda et al. 2016). A conditional
    VAE gets the images' ``labels``: the bounds are then on -log p(x|y)."""
    from genlab.models.vae import objective

    device = model.device
    g = torch.Generator(device=device).manual_seed(int(torch.randint(2**31, (1,), generator=generator)))
    neg_elbo, iw_nll = [], []
    active = objective.ActiveUnits(model.config.latent_dim).to(device)
    phases = phases or Phases.off()
    with phases.phase(f"likelihood (neg_elbo, iw_nll with k={k})", len(data), "images") as progress:
        label_batches = [None] * len(data) if labels is None else labels.to(device).split(batch_size)
        for x, y in zip(data.split(batch_size), label_batches, strict=False):
            x = model.binarize(x.to(device), generator=g)
            labelled = {} if y is None else {"labels": y}
            terms = model.elbo_terms(
                x, generator=g, **labelled
            )  # the model's own objective pieces (beta = 1)
            neg_elbo.append(terms.recon + terms.kl)
            iw_nll.append(objective.iwae_nll(model, x, k, batch_k=min(k, 50), generator=g, **labelled))
            active.update(terms.mu)
            progress.update(len(x))
    return {
        "neg_elbo": torch.cat(neg_elbo).mean().item(),
        "iw_nll": torch.cat(iw_nll).mean().item(),
        "active_units": int(active.compute()),
    }

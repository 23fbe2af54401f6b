"""FID, KID and Inception Score from precomputed features, computed by torchmetrics.

Features are extracted once per sample set (see :mod:`genlab.metrics.features`) and shared by every
metric, so torchmetrics receives them through an identity "feature network": its statistics code is
used as is, and no image passes through a network twice.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance


class PrecomputedFeatures(nn.Module):
    """Identity network: lets torchmetrics' image metrics consume feature vectors directly."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: Tensor) -> Tensor:
        return x


@contextmanager
def quiet():
    """Silence torchmetrics' notes that do not apply here (feature buffers are ours; std of one split)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        warnings.filterwarnings("ignore", message=".*degrees of freedom is <= 0.*")
        yield


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """FID: ``||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2))`` of two (N, F) feature sets."""
    metric = FrechetInceptionDistance(feature=PrecomputedFeatures(real.shape[1]))
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return float(metric.compute())


def intra_fid(
    real: Tensor, real_labels: Tensor, fake: Tensor, fake_labels: Tensor, num_classes: int
) -> tuple[float, list[float | None]]:
    """Intra-FID (Miyato & Koyama 2018): the mean over classes of the FID between the real and the generated
    features of that class; also the per-class values. A class with fewer than 2 samples on either side has no
    FID (None) and is left out of the mean."""
    per_class: list[float | None] = []
    for c in range(num_classes):
        r, f = real[real_labels == c], fake[fake_labels == c]
        per_class.append(frechet_distance(r, f) if min(len(r), len(f)) >= 2 else None)
    values = [v for v in per_class if v is not None]
    return (sum(values) / len(values) if values else float("nan")), per_class


def kernel_distance(
    real: Tensor, fake: Tensor, subsets: int = 100, subset_size: int = 1000
) -> tuple[float, float]:
    """KID (Binkowski et al. 2018): unbiased MMD^2 with a cubic polynomial kernel, mean and std over subsets.

    ``subset_size`` is capped at the smaller set size. Subsets are drawn from torch's global RNG.
    """
    size = min(subset_size, len(real), len(fake))
    with quiet():
        metric = KernelInceptionDistance(
            feature=PrecomputedFeatures(real.shape[1]), subsets=subsets, subset_size=size
        )
        metric.update(real.double(), real=True)
        metric.update(fake.double(), real=False)
        mean, std = metric.compute()
    return float(mean), float(std)


def inception_score(logits: Tensor, splits: int = 10) -> tuple[float, float]:
    """IS (Salimans et al. 2016): ``exp E_x KL(p(y|x) || p(y))`` from class logits, mean and std over splits."""
    with quiet():
        metric = InceptionScore(feature=PrecomputedFeatures(logits.shape[1]), splits=min(splits, len(logits)))
        metric.update(logits.double())
        mean, std = metric.compute()
    return float(mean), float(torch.nan_to_num(std))

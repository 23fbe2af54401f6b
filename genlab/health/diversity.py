"""Sample diversity for the mode-collapse detector: mean pairwise distance of generated samples relative to
real data's, in a fixed space (data space for vectors, 8x8 average-pooled pixels for images: no learned
features, so the number means the same at every step and in every run)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

POOLED = 8  # images are compared as POOLED x POOLED per-channel averages


def feature_space(x: Tensor) -> Tensor:
    """(N, ...) samples -> (N, F) points: vectors as they are, images average-pooled to 8x8 (in [0, 1])."""
    x = x.detach().float().cpu()
    if x.dim() == 4:
        x = F.adaptive_avg_pool2d(x, POOLED)
    return x.flatten(1)


def mean_pairwise_distance(points: Tensor) -> float:
    """Mean Euclidean distance over all pairs of rows of (N, F) ``points`` (0 for fewer than two)."""
    if len(points) < 2:
        return 0.0
    return float(torch.pdist(points.double()).mean())


def diversity_ratio(samples: Tensor, real_spread: float) -> float:
    """Samples' mean pairwise distance over real data's (``real_spread``, from :func:`mean_pairwise_distance`):
    about 1 for a generator as diverse as the data, near 0 when every sample looks alike."""
    return mean_pairwise_distance(feature_space(samples)) / real_spread if real_spread > 0 else float("nan")

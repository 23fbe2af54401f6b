"""Statistics of a classifier's predicted labels on generated samples.

- the predicted class histogram and its KL divergence to the data's histogram, ``KL(p_gen || p_data)``;
- conditional accuracy: the share of a conditional model's samples that the classifier assigns to the class
  they were generated for;
- stacked MNIST (Metz et al. 2017; PacGAN/VEEGAN protocol): each of the 3 channels is classified as a
  digit, the triple is one of 10^3 modes; report the modes that got at least one sample and
  ``KL(p_gen || uniform)`` of the mode histogram.
"""

from __future__ import annotations

import torch
from torch import Tensor


def class_histogram(labels: Tensor, num_classes: int) -> Tensor:
    """Empirical distribution of integer ``labels`` over ``num_classes`` classes (sums to 1)."""
    counts = torch.bincount(labels.flatten().long(), minlength=num_classes).double()
    return counts / counts.sum()


def kl_divergence(p: Tensor, q: Tensor) -> float:
    """``KL(p || q) = sum_i p_i log(p_i / q_i)`` in nats, with ``0 log 0 = 0``; inf where q_i = 0 < p_i."""
    p, q = p.double(), q.double()
    support = p > 0
    return float((p[support] * (p[support].log() - q[support].log())).sum())


def class_kl(fake_labels: Tensor, real_labels: Tensor, num_classes: int) -> float:
    """KL of the predicted class histogram of generated samples to the data's histogram."""
    return kl_divergence(class_histogram(fake_labels, num_classes), class_histogram(real_labels, num_classes))


def conditional_accuracy(predicted: Tensor, requested: Tensor) -> float:
    """Share of samples whose predicted class is the class they were generated for."""
    if len(requested) == 0:
        return float("nan")
    return float((predicted.long().cpu() == requested.long().cpu()).double().mean())


def stacked_modes(channel_labels: Tensor, num_classes: int = 10) -> dict[str, float]:
    """Mode statistics of per-channel digit labels ``(N, C)``: mode = the digits read as a base-10 number."""
    n_channels = channel_labels.shape[1]
    weights = num_classes ** torch.arange(n_channels - 1, -1, -1, device=channel_labels.device)
    modes = (channel_labels.long() * weights).sum(dim=1)
    n_modes = num_classes**n_channels
    hist = class_histogram(modes, n_modes)
    return {
        "modes": int((hist > 0).sum()),
        "kl_uniform": kl_divergence(hist, torch.full_like(hist, 1.0 / n_modes)),
    }

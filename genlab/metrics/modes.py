"""Mode coverage of 2D samples against a known mixture (VEEGAN / PacGAN protocol).

A sample is *high quality* when it lies within ``3 * std`` of its nearest mode; a mode is *covered*
when at least one high-quality sample has it as nearest mode.
"""

from __future__ import annotations

import torch
from torch import Tensor

HQ_STDS = 3.0


def mode_stats(samples: Tensor, modes: Tensor, std: float, hq_stds: float = HQ_STDS) -> dict:
    """Coverage statistics of ``samples`` (N, 2) for mixture ``modes`` (K, 2) of per-mode ``std``.

    Returns ``modes_covered`` (int), ``hq_fraction`` (float, share of high-quality samples),
    ``num_modes`` (K) and ``counts`` (list of K ints: high-quality samples nearest to each mode).
    """
    samples = samples.detach().float().reshape(len(samples), -1).cpu()
    modes = torch.as_tensor(modes).float().reshape(len(modes), -1).cpu()
    dist = torch.cdist(samples, modes)  # (N, K)
    nearest_dist, nearest = dist.min(dim=1)
    hq = nearest_dist <= hq_stds * std
    counts = torch.bincount(nearest[hq], minlength=len(modes))
    return {
        "modes_covered": int((counts > 0).sum()),
        "hq_fraction": float(hq.float().mean()) if len(samples) else 0.0,
        "num_modes": len(modes),
        "counts": counts.tolist(),
    }

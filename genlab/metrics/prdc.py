"""Precision/recall (Kynkaanniemi et al. 2019) and density/coverage (Naeem et al. 2020) on feature sets.

Each sample's neighbourhood is the ball reaching its k-th nearest neighbour within its own set. With R
the real and F the fake features:

- precision: fraction of F inside some real ball (k=3); recall: fraction of R inside some fake ball (k=3);
- density: mean number of real balls (k=5) containing a fake sample, divided by k (can exceed 1);
- coverage: fraction of real balls (k=5) that contain at least one fake sample.

Pure torch; distances are computed in row chunks so 10k x 10k sets fit in memory.
"""

from __future__ import annotations

import torch
from torch import Tensor


def kth_neighbour_radii(x: Tensor, k: int, chunk: int = 1024) -> Tensor:
    """Distance from each row of ``x`` to its k-th nearest other row."""
    radii = [torch.cdist(block, x).kthvalue(k + 1, dim=1).values for block in x.split(chunk)]  # +1: itself
    return torch.cat(radii)


def prdc(real: Tensor, fake: Tensor, k_pr: int = 3, k_dc: int = 5, chunk: int = 1024) -> dict[str, float]:
    """``precision``, ``recall`` (k=``k_pr``), ``density``, ``coverage`` (k=``k_dc``) of two (N, F) sets."""
    for name, x in (("real", real), ("fake", fake)):
        if len(x) <= max(k_pr, k_dc):
            raise ValueError(f"PRDC needs more than {max(k_pr, k_dc)} {name} samples, got {len(x)}")
    real, fake = real.float(), fake.float()
    real_pr, real_dc = kth_neighbour_radii(real, k_pr, chunk), kth_neighbour_radii(real, k_dc, chunk)
    fake_pr = kth_neighbour_radii(fake, k_pr, chunk)

    fake_in_real_manifold = torch.zeros(len(fake), dtype=torch.bool)
    real_balls_per_fake = torch.zeros(len(fake))
    real_in_fake_manifold, real_ball_covered = [], []
    for rows, r_pr, r_dc in zip(real.split(chunk), real_pr.split(chunk), real_dc.split(chunk), strict=True):
        d = torch.cdist(rows, fake)  # (chunk, n_fake)
        # reference implementations: <= for P/R (Kynkaanniemi), strict < for D/C (Naeem)
        fake_in_real_manifold |= (d <= r_pr[:, None]).any(dim=0)
        real_in_fake_manifold.append((d <= fake_pr[None, :]).any(dim=1))
        inside_dc = d < r_dc[:, None]
        real_balls_per_fake += inside_dc.sum(dim=0)
        real_ball_covered.append(inside_dc.any(dim=1))
    return {
        "precision": fake_in_real_manifold.float().mean().item(),
        "recall": torch.cat(real_in_fake_manifold).float().mean().item(),
        "density": (real_balls_per_fake / k_dc).mean().item(),
        "coverage": torch.cat(real_ball_covered).float().mean().item(),
    }

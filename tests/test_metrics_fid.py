"""FID / KID / IS against hand-computed or independent (scipy) references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from genlab.metrics import frechet_distance, inception_score, kernel_distance


def with_moments(n: int, mean: torch.Tensor, cov: torch.Tensor, seed: int) -> torch.Tensor:
    """n points whose sample mean and (unbiased) sample covariance are exactly ``mean`` and ``cov``."""
    z = torch.randn(n, len(mean), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    z = z - z.mean(0)
    white = z @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(z.T))).T
    return white @ torch.linalg.cholesky(cov).T + mean


def random_cov(d: int, seed: int) -> torch.Tensor:
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


def test_fid_of_a_set_with_itself_is_zero():
    x = torch.randn(500, 16, generator=torch.Generator().manual_seed(0))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)


def test_fid_between_gaussians_equals_the_closed_form():
    d = 8
    m1, m2 = torch.zeros(d, dtype=torch.float64), torch.linspace(-1, 1, d, dtype=torch.float64)
    s1, s2 = random_cov(d, 1), random_cov(d, 2)
    x1, x2 = with_moments(400, m1, s1, seed=3), with_moments(300, m2, s2, seed=4)
    s1n, s2n = s1.numpy(), s2.numpy()
    covmean = scipy.linalg.sqrtm(s1n @ s2n).real
    expected = float(np.sum((m1 - m2).numpy() ** 2) + np.trace(s1n + s2n - 2 * covmean))
    assert frechet_distance(x1, x2) == pytest.approx(expected, rel=1e-6)


def test_fid_diagonal_gaussians_match_the_per_dimension_formula():
    # diagonal covariances: FID = sum (m1 - m2)^2 + (s1 - s2)^2 with s the standard deviations
    m1, m2 = (
        torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64),
        torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64),
    )
    sd1, sd2 = (
        torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64),
        torch.tensor([1.0, 0.5, 3.0], dtype=torch.float64),
    )
    x1 = with_moments(200, m1, torch.diag(sd1**2), seed=5)
    x2 = with_moments(200, m2, torch.diag(sd2**2), seed=6)
    expected = (1 + 0 + 4) + (0 + 1.5**2 + 2.5**2)
    assert frechet_distance(x1, x2) == pytest.approx(expected, rel=1e-6)


def test_kid_is_near_zero_within_one_distribution_and_not_across_two():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(600, 16, generator=g), torch.randn(600, 16, generator=g)
    torch.manual_seed(0)
    same, same_std = kernel_distance(a, b, subsets=20, subset_size=300)
    shifted, _ = kernel_distance(a, b + 0.5, subsets=20, subset_size=300)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 20 * abs(same) and shifted > 0.01


def test_inception_score_of_hand_built_predictions():
    k = 10
    confident = torch.eye(k).repeat(20, 1) * 50.0  # each class predicted with certainty, classes balanced
    collapsed = torch.zeros(200, k)
    collapsed[:, 3] = 50.0  # every sample the same certain class
    assert inception_score(confident, splits=1)[0] == pytest.approx(k, rel=1e-4)
    assert inception_score(collapsed, splits=1)[0] == pytest.approx(1.0, abs=1e-4)
    # uniform predictions: p(y|x) = p(y), KL = 0, IS = exp(0) = 1
    assert inception_score(torch.zeros(50, k), splits=1)[0] == pytest.approx(math.exp(0.0))

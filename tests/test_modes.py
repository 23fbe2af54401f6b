"""Mode coverage on 2D samples (VEEGAN / PacGAN protocol), checked on hand-placed points."""

from __future__ import annotations

import pytest
import torch

from genlab.metrics.modes import mode_stats

MODES = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])


def test_hand_placed_samples():
    std = 0.1  # high quality: within 0.3 of the nearest mode
    samples = torch.tensor(
        [
            [0.0, 0.0],  # mode 0, hq
            [0.29, 0.0],  # mode 0, hq (just inside 3 std)
            [10.0, 0.31],  # nearest mode 1 but outside 3 std: low quality
            [5.0, 5.0],  # far from everything
        ]
    )
    stats = mode_stats(samples, MODES, std)
    assert stats["modes_covered"] == 1
    assert stats["hq_fraction"] == pytest.approx(2 / 4)
    assert stats["counts"] == [2, 0, 0]
    assert stats["num_modes"] == 3


def test_samples_from_the_mixture_cover_every_mode():
    g = torch.Generator().manual_seed(0)
    std = 0.05
    samples = MODES.repeat(100, 1) + std * torch.randn(300, 2, generator=g)
    stats = mode_stats(samples, MODES, std)
    assert stats["modes_covered"] == 3
    # 2D Gaussian: P(||e|| <= 3 std) = 1 - exp(-9/2) ~ 0.989
    assert stats["hq_fraction"] > 0.97
    assert sum(stats["counts"]) == round(stats["hq_fraction"] * 300)


def test_collapsed_samples_cover_one_mode():
    stats = mode_stats(MODES[1].repeat(50, 1), MODES, 0.1)
    assert stats["modes_covered"] == 1 and stats["counts"] == [0, 50, 0] and stats["hq_fraction"] == 1.0

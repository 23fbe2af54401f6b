"""Class histograms, their KL and stacked-MNIST mode counting on hand-made labels."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.metrics import class_histogram, class_kl, kl_divergence, stacked_modes


def test_class_histogram_counts():
    assert class_histogram(torch.tensor([0, 2, 2, 3]), 4).tolist() == [0.25, 0.0, 0.5, 0.25]


def test_kl_divergence_by_hand():
    p, q = torch.tensor([0.5, 0.5, 0.0]), torch.tensor([0.25, 0.25, 0.5])
    assert kl_divergence(p, q) == pytest.approx(math.log(2))  # 2 * 0.5 * log(0.5 / 0.25)
    assert kl_divergence(q, q) == 0.0


def test_class_kl_of_a_collapsed_generator_is_log_k():
    real = torch.arange(10).repeat(5)  # balanced over 10 classes
    fake = torch.full((30,), 7)
    assert class_kl(fake, real, 10) == pytest.approx(math.log(10))
    assert class_kl(real.flip(0), real, 10) == pytest.approx(0.0)


def test_stacked_modes_hand_counted():
    labels = torch.tensor([[1, 2, 3], [1, 2, 3], [3, 2, 1], [0, 0, 0]])  # modes 123, 123, 321, 0
    stats = stacked_modes(labels)
    assert stats["modes"] == 3
    # p = (1/2, 1/4, 1/4) on 3 of 1000 modes: KL to uniform = sum p log(1000 p)
    expected = 0.5 * math.log(500) + 2 * 0.25 * math.log(250)
    assert stats["kl_uniform"] == pytest.approx(expected)


def test_stacked_modes_all_thousand_covered_uniformly():
    d = torch.arange(1000)
    labels = torch.stack([d // 100, d // 10 % 10, d % 10], dim=1)
    stats = stacked_modes(labels)
    assert stats["modes"] == 1000
    assert stats["kl_uniform"] == pytest.approx(0.0, abs=1e-12)

"""Precision/recall/density/coverage on sets whose answer is known by construction."""

from __future__ import annotations

import pytest
import torch

from genlab.metrics import prdc
from genlab.metrics.prdc import kth_neighbour_radii


def test_identical_sets_score_one():
    x = torch.randn(300, 8, generator=torch.Generator().manual_seed(0))
    scores = prdc(x, x.clone())
    for key in ("precision", "recall", "density", "coverage"):
        assert scores[key] == pytest.approx(1.0, abs=1e-6), key


def test_disjoint_sets_score_zero():
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(200, 4, generator=g), torch.randn(200, 4, generator=g) + 100.0
    assert prdc(real, fake) == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_mode_dropping_lowers_recall_and_coverage_not_precision():
    g = torch.Generator().manual_seed(2)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    real = torch.cat(
        [centres[0] + torch.randn(200, 2, generator=g), centres[1] + torch.randn(200, 2, generator=g)]
    )
    fake = centres[0] + torch.randn(400, 2, generator=g)  # only the first mode
    s = prdc(real, fake)
    assert s["precision"] > 0.95
    assert s["recall"] == pytest.approx(0.5, abs=0.06)
    assert s["coverage"] == pytest.approx(0.5, abs=0.06)


def test_kth_neighbour_radii_on_a_line():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    # distances from 0: 1, 3, 7 -> 2nd neighbour at 3; from 1: 1, 2, 6 -> 2; from 3: 2, 3, 4 -> 3; from 7: 4, 6, 7 -> 6
    assert kth_neighbour_radii(x, k=2, chunk=3).tolist() == [3.0, 2.0, 3.0, 6.0]


def test_chunking_does_not_change_the_result():
    g = torch.Generator().manual_seed(3)
    real, fake = torch.randn(130, 5, generator=g), torch.randn(110, 5, generator=g) * 1.3
    assert prdc(real, fake, chunk=17) == pytest.approx(prdc(real, fake, chunk=4096))

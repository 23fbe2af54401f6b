"""GAN losses and penalties against hand-computed values on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from genlab.models.gan.losses import (
    LOSSES,
    gradient_penalty,
    hinge_d_loss,
    hinge_g_loss,
    ns_d_loss,
    ns_g_loss,
    r1_penalty,
    wgan_d_loss,
    wgan_g_loss,
)

REAL = torch.tensor([0.0, 2.0])
FAKE = torch.tensor([-1.0, 0.0])


def softplus(t: float) -> float:
    return math.log1p(math.exp(t))


def test_ns_losses_match_hand_computed_values():
    # -log sigmoid(r) = log(1 + e^-r);  -log(1 - sigmoid(f)) = log(1 + e^f)
    expected_d = (softplus(-0.0) + softplus(-2.0)) / 2 + (softplus(-1.0) + softplus(0.0)) / 2
    expected_g = (softplus(1.0) + softplus(0.0)) / 2
    assert ns_d_loss(REAL, FAKE).item() == pytest.approx(expected_d, rel=1e-6)
    assert ns_g_loss(FAKE).item() == pytest.approx(expected_g, rel=1e-6)


def test_ns_d_loss_equals_binary_cross_entropy_on_probabilities():
    real, fake = torch.randn(16), torch.randn(16)
    bce = F.binary_cross_entropy(torch.sigmoid(real), torch.ones(16)) + F.binary_cross_entropy(
        torch.sigmoid(fake), torch.zeros(16)
    )
    assert ns_d_loss(real, fake).item() == pytest.approx(bce.item(), rel=1e-5)


def test_ns_losses_stay_finite_at_extreme_logits():
    big = torch.tensor([1e4, -1e4])
    assert torch.isfinite(ns_d_loss(big, big)) and torch.isfinite(ns_g_loss(big))


def test_hinge_losses_match_hand_computed_values():
    # relu(1 - [0, 2]) = [1, 0];  relu(1 + [-1, 0]) = [0, 1]
    assert hinge_d_loss(REAL, FAKE).item() == pytest.approx(0.5 + 0.5)
    assert hinge_g_loss(FAKE).item() == pytest.approx(0.5)


def test_wgan_losses_match_hand_computed_values():
    assert wgan_d_loss(REAL, FAKE).item() == pytest.approx(-0.5 - 1.0)
    assert wgan_g_loss(FAKE).item() == pytest.approx(0.5)


def test_every_configured_loss_is_registered():
    assert set(LOSSES) == {"ns", "hinge", "wgan"}


def test_gradient_penalty_of_a_linear_critic_is_known():
    # D(x) = <w, x> + b has gradient w everywhere: penalty = (||w|| - 1)^2 = (5 - 1)^2
    w = torch.tensor([3.0, 4.0])

    def critic(x):
        return x @ w + 0.7

    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    gp = gradient_penalty(critic, real, fake, torch.rand(8))
    assert gp.item() == pytest.approx(16.0)


def test_gradient_penalty_is_evaluated_at_the_interpolates():
    # D(x) = sum(x^2): gradient 2 * x_hat with x_hat = a * real + (1 - a) * fake
    real = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    fake = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    alpha = torch.tensor([0.5, 0.25])
    # x_hat = [[0.5, 0], [0, 0.5]]: gradient norms 1 and 1 -> penalty 0
    assert gradient_penalty(lambda x: (x**2).sum(1), real, fake, alpha).item() == pytest.approx(0.0, abs=1e-7)
    alpha = torch.tensor([1.0, 1.0])  # x_hat = real: norms 2 and 4 -> ((2-1)^2 + (4-1)^2) / 2 = 5
    assert gradient_penalty(lambda x: (x**2).sum(1), real, fake, alpha).item() == pytest.approx(5.0)


def test_gradient_penalty_backpropagates_into_the_critic():
    critic = torch.nn.Linear(3, 1)
    gp = gradient_penalty(lambda x: critic(x).view(-1), torch.randn(4, 3), torch.randn(4, 3), torch.rand(4))
    gp.backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    w = critic.weight.detach().view(-1)
    expected = 2 * (w.norm() - 1) * w / w.norm()
    torch.testing.assert_close(critic.weight.grad.view(-1), expected)


def test_r1_penalty_of_a_linear_critic_is_squared_weight_norm():
    w = torch.tensor([3.0, 4.0])
    real = torch.randn(8, 2, requires_grad=True)
    assert r1_penalty(real @ w, real).item() == pytest.approx(25.0)


def test_r1_penalty_of_a_quadratic_critic():
    # D(x) = sum(x^2) -> grad 2x -> ||grad||^2 = 4 ||x||^2; rows [1, 0] and [1, 1] -> (4 + 8) / 2
    real = torch.tensor([[1.0, 0.0], [1.0, 1.0]], requires_grad=True)
    assert r1_penalty((real**2).sum(1), real).item() == pytest.approx(6.0)

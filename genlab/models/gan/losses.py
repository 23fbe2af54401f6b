"""GAN objectives and penalties as small pure functions of discriminator logits (mimicry style).

Every discriminator outputs raw logits / critic scores (no sigmoid), so the ``ns`` losses use the
numerically stable ``softplus`` form: ``-log sigmoid(t) = softplus(-t)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def ns_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Standard GAN discriminator loss: ``-log D(x) - log(1 - D(G(z)))`` with D = sigmoid(logit)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def ns_g_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating generator loss: ``-log D(G(z))``."""
    return F.softplus(-fake_logits).mean()


def hinge_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Hinge discriminator loss: ``E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]``."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def hinge_g_loss(fake_logits: Tensor) -> Tensor:
    """Hinge generator loss: ``-E[D(G(z))]``."""
    return -fake_logits.mean()


def wgan_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Wasserstein critic loss: ``E[D(G(z))] - E[D(x)]`` (pair with a gradient penalty or spectral norm)."""
    return fake_logits.mean() - real_logits.mean()


def wgan_g_loss(fake_logits: Tensor) -> Tensor:
    """Wasserstein generator loss: ``-E[D(G(z))]``."""
    return -fake_logits.mean()


LOSSES: dict[str, tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]] = {
    "ns": (ns_d_loss, ns_g_loss),
    "hinge": (hinge_d_loss, hinge_g_loss),
    "wgan": (wgan_d_loss, wgan_g_loss),
}


def gradient_penalty(
    critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, weight: Tensor
) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): ``E[(||grad_x D(x_hat)||_2 - 1)^2]`` at random interpolates.

    ``weight`` holds one interpolation coefficient per row of ``real`` (shape ``(B,)``, in [0, 1]),
    passed in so the function stays pure and testable. Returns the unweighted penalty.
    """
    w = weight.view(-1, *([1] * (real.dim() - 1))).to(real.dtype)
    x_hat = (w * real.detach() + (1 - w) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def r1_penalty(real_logits: Tensor, real: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018): ``E[||grad_x D(x)||^2]`` on real data; scale by ``gamma / 2``.

    ``real`` must have ``requires_grad=True`` and ``real_logits`` must have been computed from it.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()

"""The VAE objective as small pure functions (all values in nats).

Per example, with q(z|x) = N(mu, diag(exp(logvar))) and p(z) = N(0, I) (or the VampPrior, a uniform mixture of
Gaussians, whose KL has no closed form and is estimated from the samples of z):

    neg_elbo(x) = E_q[-log p(x|z)] + KL(q(z|x) || p(z))

reconstruction NLL summed over pixels, closed-form KL summed over latent dims; losses are the batch
mean of these per-example values (nats per image).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
import torchmetrics
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)


def reparameterize(mu: Tensor, logvar: Tensor, eps: Tensor | None = None) -> Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I): a differentiable sample of q(z|x)."""
    if eps is None:
        eps = torch.randn_like(mu)
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per latent dim (same shape as ``mu``)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def log_normal(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last dim."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(-1)


def log_standard_normal(z: Tensor) -> Tensor:
    """log N(z; 0, I), summed over the last dim."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)


def log_normal_mixture(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log (1/K) sum_k N(z; mu_k, diag(exp(logvar_k))) over the K components ``mu``, ``logvar`` (K, D), for every
    row of ``z`` (..., D): the VampPrior's log density.

    The quadratic form is expanded into matrix products, (z^2) (1/var)^T - 2 z (mu/var)^T + sum mu^2/var, so no
    (rows, K, D) tensor is formed; the products run in float64 because their terms cancel when z is near mu_k."""
    flat, mu, logvar = z.reshape(-1, z.shape[-1]).double(), mu.double(), logvar.double()
    precision = torch.exp(-logvar)
    quadratic = flat.pow(2) @ precision.T - 2 * flat @ (mu * precision).T + (mu.pow(2) * precision).sum(1)
    log_n = -0.5 * (quadratic + logvar.sum(1) + z.shape[-1] * LOG_2PI)  # (rows, K)
    log_p = torch.logsumexp(log_n, dim=1) - math.log(len(mu))
    return log_p.to(z.dtype).view(z.shape[:-1])


def bernoulli_nll(logits: Tensor, x: Tensor) -> Tensor:
    """-log Bernoulli(x; sigmoid(logits)) summed over all but the batch dim."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def gaussian_nll(mean: Tensor, x: Tensor, log_std: Tensor) -> Tensor:
    """-log N(x; mean, exp(log_std)^2) summed over all but the batch dim (``log_std`` broadcasts)."""
    nll = 0.5 * LOG_2PI + log_std + 0.5 * ((x - mean) * torch.exp(-log_std)).pow(2)
    return nll.flatten(1).sum(1)


def kl_weight(step: int, beta: float, warmup_steps: int) -> float:
    """beta_t = beta * min(1, step / warmup_steps): linear KL warm-up (no warm-up when warmup_steps is 0)."""
    if warmup_steps <= 0:
        return float(beta)
    return float(beta) * min(1.0, step / warmup_steps)


def free_bits_kl(kl_per_dim: Tensor, free_bits: float) -> Tensor:
    """Free-bits KL term (Kingma et al. 2016): sum_j max(free_bits, batch-mean KL_j), a scalar.

    Dims already above ``free_bits`` nats get their usual gradient; those below get none, so the
    encoder is not pushed to collapse them. With ``free_bits=0`` it equals the batch-mean KL.
    """
    return kl_per_dim.mean(0).clamp(min=free_bits).sum()


class ActiveUnits(torchmetrics.Metric):
    """Number of latent dims whose posterior mean varies over the data: Var_x(E_q[z_j]) > ``threshold`` (Burda
    et al. 2016), accumulated over batches of posterior means (DDP-safe). The one definition of active units:
    :func:`active_units` is this metric over one set of means."""

    full_state_update = False

    def __init__(self, latent_dim: int, threshold: float = 0.01) -> None:
        super().__init__()
        self.threshold = threshold
        self.add_state("n", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", torch.zeros(latent_dim, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total_sq", torch.zeros(latent_dim, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, mu: Tensor) -> None:
        mu = mu.detach().double()
        self.n += len(mu)
        self.total += mu.sum(0)
        self.total_sq += mu.pow(2).sum(0)

    def compute(self) -> Tensor:
        mean = self.total / self.n
        var = self.total_sq / self.n - mean.pow(2)
        return (var > self.threshold).sum().float()


def active_units(mu: Tensor, threshold: float = 0.01) -> Tensor:
    """:class:`ActiveUnits` of the posterior means ``mu`` (N, D) of N data points."""
    metric = ActiveUnits(mu.shape[1], threshold).to(mu.device)
    metric.update(mu)
    return metric.compute()


def sample_log_likelihoods(
    model, x: Tensor, mu: Tensor, logvar: Tensor, eps: Tensor, labels: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """z_i = mu + sigma * eps_i (``eps``: (k, B, D)) and log p(x|z_i) per sample and example (k, B)."""
    k = len(eps)
    z = reparameterize(mu, logvar, eps)  # (k, B, D)
    x_rep = x.unsqueeze(0).expand(k, *x.shape).reshape(k * len(x), *x.shape[1:])
    y_rep = () if labels is None else (labels.repeat(k),)  # the same order as x_rep
    return z, -model.recon_nll(x_rep, z.reshape(k * len(x), -1), *y_rep).view(k, len(x))


def log_prior_ratio(
    z: Tensor, mu: Tensor, logvar: Tensor, log_prior: Callable[[Tensor], Tensor] = log_standard_normal
) -> Tensor:
    """log p(z) - log q(z|x) per sample and example (``log_prior``: z (..., D) -> log p(z) (...), by default the
    standard normal's); plus log p(x|z) it is the log importance weight of z."""
    return log_prior(z) - log_normal(z, mu, logvar)


def iwae_bound(log_px: Tensor, log_ratio: Tensor, beta: float = 1.0) -> Tensor:
    """-log (1/k) sum_i exp(log p(x|z_i) + beta * (log p(z_i) - log q(z_i|x))) per example: the negative
    importance-weighted bound (Burda et al. 2016) from (k, B) log weights; ``beta`` < 1 is a KL warm-up."""
    return -(torch.logsumexp(log_px + beta * log_ratio, dim=0) - math.log(len(log_px)))


def iwae_nll(
    model,
    x: Tensor,
    k: int,
    batch_k: int | None = None,
    generator: torch.Generator | None = None,
    labels: Tensor | None = None,
) -> Tensor:
    """Importance-weighted estimate of -log p(x) with k samples (Burda et al. 2016), per example (nats).

    -log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x). It is an upper bound on -log p(x) that
    tightens as k grows; at k=1 it is the single-sample negative ELBO (so in expectation it is >= the
    bound at any k > 1). ``model`` needs ``encode(x, labels) -> (mu, logvar)``,
    ``recon_nll(x, z, labels) -> (B,)`` (a conditional VAE reads ``labels``: the bound on -log p(x|y)) and
    ``log_prior(z)``;
    ``batch_k`` samples are decoded at once to bound memory.
    """
    batch_k = k if batch_k is None else max(1, min(batch_k, k))
    mu, logvar = model.encode(x, *(() if labels is None else (labels,)))
    log_w = []
    for start in range(0, k, batch_k):
        kc = min(batch_k, k - start)
        eps = torch.randn((kc, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
        z, log_px = sample_log_likelihoods(model, x, mu, logvar, eps, labels)
        log_w.append(log_px + log_prior_ratio(z, mu, logvar, model.log_prior))
    return -(torch.logsumexp(torch.cat(log_w), dim=0) - math.log(k))

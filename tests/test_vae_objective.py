"""The VAE objective's pure functions against independent references (torch.distributions, closed forms)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Independent, MultivariateNormal, Normal, kl_divergence

from genlab.models.vae import iwae_nll
from genlab.models.vae.objective import (
    active_units,
    bernoulli_nll,
    free_bits_kl,
    gaussian_kl,
    gaussian_nll,
    kl_weight,
    log_normal,
    log_standard_normal,
    reparameterize,
)


def test_gaussian_kl_matches_torch_distributions_and_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    kl = gaussian_kl(mu, logvar)
    q, p = Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)
    torch.testing.assert_close(kl, kl_divergence(q, p))
    z = q.sample((200_000,))
    monte_carlo = (q.log_prob(z) - p.log_prob(z)).mean(0)
    torch.testing.assert_close(kl, monte_carlo, atol=0.03, rtol=0.02)


def test_kl_is_zero_exactly_at_the_prior():
    assert gaussian_kl(torch.zeros(3, 5), torch.zeros(3, 5)).abs().max() == 0


def test_log_densities_match_torch_distributions():
    g = torch.Generator().manual_seed(1)
    z, mu, logvar = (torch.randn(7, 5, generator=g) for _ in range(3))
    expected = Independent(Normal(mu, (0.5 * logvar).exp()), 1).log_prob(z)
    torch.testing.assert_close(log_normal(z, mu, logvar), expected)
    torch.testing.assert_close(log_standard_normal(z), Independent(Normal(0.0, torch.ones(5)), 1).log_prob(z))


def test_reparameterize_is_mu_plus_sigma_eps():
    mu, logvar, eps = (
        torch.tensor([1.0, -2.0]),
        torch.log(torch.tensor([4.0, 0.25])),
        torch.tensor([0.5, 2.0]),
    )
    torch.testing.assert_close(
        reparameterize(mu, logvar, eps), torch.tensor([1.0 + 2.0 * 0.5, -2.0 + 0.5 * 2.0])
    )


def test_bernoulli_nll_matches_torch_distributions():
    g = torch.Generator().manual_seed(2)
    logits = 3 * torch.randn(5, 1, 4, 4, generator=g)
    x = torch.bernoulli(torch.full((5, 1, 4, 4), 0.4), generator=g)
    expected = -Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(bernoulli_nll(logits, x), expected)
    # hand-computed: one pixel x=1 with p=sigmoid(0)=0.5 costs log 2 nats
    assert bernoulli_nll(torch.zeros(1, 1), torch.ones(1, 1)).item() == pytest.approx(math.log(2))


@pytest.mark.parametrize("log_std", [math.log(0.1), torch.tensor(0.3)])
def test_gaussian_nll_matches_torch_distributions(log_std):
    g = torch.Generator().manual_seed(3)
    mean, x = torch.rand(5, 3, 4, 4, generator=g), torch.rand(5, 3, 4, 4, generator=g)
    log_std = torch.as_tensor(log_std, dtype=torch.float32)
    expected = -Normal(mean, log_std.exp()).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(gaussian_nll(mean, x, log_std), expected)


def test_kl_weight_scales_by_beta_and_warms_up_linearly():
    assert kl_weight(0, beta=1.0, warmup_steps=0) == 1.0
    assert kl_weight(123, beta=4.0, warmup_steps=0) == 4.0
    assert [kl_weight(s, beta=2.0, warmup_steps=4) for s in (0, 1, 2, 4, 10)] == [0.0, 0.5, 1.0, 2.0, 2.0]


def test_free_bits_clamps_the_batch_mean_kl_per_dim_and_stops_its_gradient():
    kl = torch.tensor([[0.1, 2.0, 0.3], [0.3, 4.0, 0.5]], requires_grad=True)  # batch means 0.2, 3.0, 0.4
    value = free_bits_kl(kl, free_bits=0.5)
    assert value.item() == pytest.approx(0.5 + 3.0 + 0.5)
    value.backward()
    torch.testing.assert_close(kl.grad, torch.tensor([[0.0, 0.5, 0.0], [0.0, 0.5, 0.0]]))
    assert free_bits_kl(kl, 0.0).item() == pytest.approx(kl.sum(1).mean().item())


def test_active_units_counts_dims_whose_posterior_mean_varies_over_the_data():
    g = torch.Generator().manual_seed(4)
    mu = torch.cat([torch.randn(1000, 3, generator=g), 0.01 * torch.randn(1000, 2, generator=g)], dim=1)
    assert active_units(mu).item() == 3  # variances ~1 (active) vs ~1e-4 (inactive)
    assert active_units(torch.ones(10, 4)).item() == 0


class LinearGaussianVAE:
    """z ~ N(0, I), x|z ~ N(Wz + b, s^2 I) with orthogonal columns in W: p(x) and the exact posterior
    (diagonal) are known in closed form, so the importance-weighted bound has an exact reference."""

    def __init__(self, n: int = 6, d: int = 3, s: float = 0.5, posterior_shift: float = 0.0) -> None:
        g = torch.Generator().manual_seed(5)
        q, _ = torch.linalg.qr(torch.randn(n, d, generator=g, dtype=torch.float64))
        self.w = q * torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64)[:d]
        self.b = torch.randn(n, generator=g, dtype=torch.float64)
        self.s = s
        self.shift = posterior_shift  # 0: q is the exact posterior; >0: a deliberately worse q

    def encode(self, x):
        prec = 1 + (self.w**2).sum(0) / self.s**2  # W^T W is diagonal
        mu = ((x - self.b) @ self.w) / self.s**2 / prec
        return mu + self.shift, (-prec.log()).expand_as(mu)

    def recon_nll(self, x, z):
        return gaussian_nll(z @ self.w.T + self.b, x, torch.tensor(math.log(self.s), dtype=torch.float64))

    def log_prior(self, z):
        return log_standard_normal(z)

    def log_px(self, x):
        cov = self.w @ self.w.T + self.s**2 * torch.eye(len(self.b), dtype=torch.float64)
        return MultivariateNormal(self.b, cov).log_prob(x)


def single_sample_neg_elbos(model, x, eps):
    """-(log p(x|z) + log p(z) - log q(z|x)) for each z = mu + sigma * eps: (k, B)."""
    mu, logvar = model.encode(x)
    z = reparameterize(mu, logvar, eps)
    k, b = eps.shape[:2]
    log_px = -model.recon_nll(x.expand(k, *x.shape).reshape(k * b, -1), z.reshape(k * b, -1)).view(k, b)
    return -(log_px + log_standard_normal(z) - log_normal(z, mu, logvar))


def test_iwae_is_exact_when_q_is_the_true_posterior():
    model = LinearGaussianVAE()
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    torch.testing.assert_close(iwae_nll(model, x, k=1), -model.log_px(x))  # any z: every weight is p(x)
    torch.testing.assert_close(iwae_nll(model, x, k=7, batch_k=3), -model.log_px(x))


def test_iwae_at_k1_equals_the_single_sample_elbo_with_the_same_z():
    model = LinearGaussianVAE(posterior_shift=0.7)
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    eps = torch.randn((1, 8, 3), generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    iw = iwae_nll(model, x, k=1, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(iw, single_sample_neg_elbos(model, x, eps)[0])


def test_iwae_bound_lies_between_the_true_nll_and_the_elbo():
    model = LinearGaussianVAE(posterior_shift=0.3)
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    k = 64
    eps = torch.randn((k, 8, 3), generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    iw = iwae_nll(model, x, k=k, batch_k=10, generator=torch.Generator().manual_seed(10))
    elbo_same_samples = single_sample_neg_elbos(model, x, eps).mean(0)
    assert (iw <= elbo_same_samples + 1e-9).all()  # Jensen, on the very same samples
    mu, logvar = model.encode(x)
    closed_form_neg_elbo = (
        model.recon_nll(x, mu) + 0.5 * (logvar.exp() * (model.w**2).sum(0)).sum(1) / model.s**2
    )
    closed_form_neg_elbo = closed_form_neg_elbo + gaussian_kl(mu, logvar).sum(1)
    gap = closed_form_neg_elbo + model.log_px(x)  # KL(q || true posterior) > 0
    assert (gap > 0.1).all()
    many = iwae_nll(model, x, k=10_000, batch_k=5_000, generator=torch.Generator().manual_seed(11))
    assert ((many + model.log_px(x)).abs() < 0.1 * gap).all()  # k -> inf closes most of the gap
    assert (many <= closed_form_neg_elbo).all()

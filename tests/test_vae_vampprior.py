"""The VampPrior option of the VAE: its density, its KL estimate, its samples, its training and its checkpoints."""

from __future__ import annotations

import pytest
import torch
from builders import build
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal
from trainers import bare_trainer

from genlab.config.spec import DataSpec
from genlab.data import TensorBatches
from genlab.models.vae import VAE, VAEConfig, iwae_nll
from genlab.models.vae.objective import log_normal, log_normal_mixture, log_standard_normal
from genlab.utils.errors import ConfigError


def reference_mixture(mu: torch.Tensor, logvar: torch.Tensor) -> MixtureSameFamily:
    weights = Categorical(logits=torch.zeros(len(mu), dtype=mu.dtype))
    return MixtureSameFamily(weights, Independent(Normal(mu, torch.exp(0.5 * logvar)), 1))


def vamp_vae(**overrides) -> VAE:
    torch.manual_seed(0)
    settings = dict(net="mlp", latent_dim=4, hidden=32, prior="vampprior", pseudo_inputs=7) | overrides
    return build(VAE, DataSpec((1, 28, 28), (0.0, 1.0), name="test"), **settings)


def test_log_normal_mixture_matches_torch_distributions_also_next_to_narrow_components():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(9, 5, generator=g, dtype=torch.float64)
    logvar = torch.randn(9, 5, generator=g, dtype=torch.float64) * 2 - 6  # std down to ~1e-3
    far = torch.randn(3, 4, 5, generator=g, dtype=torch.float64) * 3
    near = mu[torch.randint(9, (12,), generator=g)] + 1e-3 * torch.randn(
        12, 5, generator=g, dtype=torch.float64
    )
    for z in (far, near.view(3, 4, 5)):
        torch.testing.assert_close(
            log_normal_mixture(z, mu, logvar), reference_mixture(mu, logvar).log_prob(z)
        )
    # in float32 too: the products run in float64, so a point on a narrow component loses nothing
    z32 = near.float()
    got = log_normal_mixture(z32, mu.float(), logvar.float())
    assert got.dtype == torch.float32
    ref = reference_mixture(mu.float().double(), logvar.float().double()).log_prob(z32.double())
    torch.testing.assert_close(got.double(), ref, rtol=1e-6, atol=1e-5)


def test_one_component_at_the_origin_is_the_standard_normal():
    z = torch.randn(6, 3)
    torch.testing.assert_close(
        log_normal_mixture(z, torch.zeros(1, 3), torch.zeros(1, 3)), log_standard_normal(z)
    )


def test_log_prior_is_the_mixture_of_the_encoded_pseudo_inputs():
    model = vamp_vae()
    mu, logvar = model.encode(model.vamp.inputs())
    assert mu.shape == (7, 4)
    z = torch.randn(2, 5, 4)
    torch.testing.assert_close(
        model.log_prior(z), reference_mixture(mu, logvar).log_prob(z), rtol=1e-5, atol=1e-5
    )
    standard = vamp_vae(prior="standard")
    torch.testing.assert_close(standard.log_prior(z), log_standard_normal(z))


def test_pseudo_inputs_start_inside_the_value_range_and_are_clamped_to_it():
    model = vamp_vae()
    assert model.vamp.pseudo_inputs.shape == (7, 1, 28, 28)
    assert 0 < model.vamp.inputs().min() and model.vamp.inputs().max() < 0.2
    with torch.no_grad():
        model.vamp.pseudo_inputs.fill_(3.0)
    assert model.vamp.inputs().max() == 1.0


def test_kl_is_the_sample_estimate_and_the_loss_is_the_elbo_with_it():
    model = vamp_vae()
    x = model.binarize(torch.rand(6, 1, 28, 28))
    terms = model.elbo_terms(x, generator=torch.Generator().manual_seed(3))
    assert terms.kl_per_dim is None
    z = terms.z
    expected_kl = (log_normal(z, terms.mu, terms.logvar) - model.log_prior(z)).mean(0)
    torch.testing.assert_close(terms.kl, expected_kl)
    losses = model._losses(terms)
    torch.testing.assert_close(losses["loss"], (terms.recon + expected_kl).mean())
    # the standard prior's closed-form KL would give a different loss: the prior is really in the objective
    closed_form = 0.5 * (terms.mu.pow(2) + terms.logvar.exp() - 1 - terms.logvar).sum(1)
    assert not torch.allclose(closed_form, expected_kl)


def test_kl_estimate_averages_to_the_kl_against_the_mixture():
    model = vamp_vae()
    x = model.binarize(torch.rand(3, 1, 28, 28), generator=torch.Generator().manual_seed(1))
    terms = model.elbo_terms(x, generator=torch.Generator().manual_seed(4), samples=20_000)
    with torch.no_grad():
        mu, logvar = model.encode(model.vamp.inputs())
        q = Independent(Normal(terms.mu, torch.exp(0.5 * terms.logvar)), 1)
        z = q.sample((20_000,))
        monte_carlo_kl = (q.log_prob(z) - reference_mixture(mu, logvar).log_prob(z)).mean(0)
    torch.testing.assert_close(terms.kl.detach(), monte_carlo_kl, rtol=0.02, atol=0.02)


def test_iwae_bound_uses_the_model_prior():
    model = vamp_vae()
    x = model.binarize(torch.rand(4, 1, 28, 28), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        bound = iwae_nll(model, x, k=3, generator=torch.Generator().manual_seed(5))
        mu, logvar = model.encode(x)
        eps = torch.randn((3, *mu.shape), generator=torch.Generator().manual_seed(5))
        z = mu + torch.exp(0.5 * logvar) * eps
        log_px = -model.recon_nll(x.repeat(3, 1, 1, 1), z.reshape(12, -1)).view(3, 4)
        log_w = log_px + model.log_prior(z) - log_normal(z, mu, logvar)
    expected = -(torch.logsumexp(log_w, 0) - torch.log(torch.tensor(3.0)))
    torch.testing.assert_close(bound, expected)


def test_prior_samples_come_from_the_components():
    model = vamp_vae()
    with torch.no_grad():  # narrow components at known places: every prior draw lands next to one of them
        model.encoder[1][-1].weight.zero_()
        model.encoder[1][-1].bias.zero_()
        model.encoder[1][-1].bias[4:] = -20.0  # logvar: std 4.5e-5
        model.vamp.pseudo_inputs.zero_()
    centre = model.prior_components()[0][0]
    z = model.prior_latents(50, generator=torch.Generator().manual_seed(0))
    assert (z - centre).abs().max() < 1e-3
    assert (model.fixed_latents() - centre).abs().max() < 1e-3
    assert model.sample(5).shape == (5, 1, 28, 28)
    standard = vamp_vae(prior="standard")
    assert standard.prior_latents(2000).std() == pytest.approx(1.0, abs=0.05)


def test_training_moves_the_pseudo_inputs_and_the_checkpoint_keeps_them(tmp_path):
    model = vamp_vae(train_samples=3)
    before = model.vamp.pseudo_inputs.detach().clone()
    data = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    trainer = bare_trainer(4, num_sanity_val_steps=0, log_every_n_steps=1)
    trainer.fit(model, TensorBatches(data, None, 8, shuffle=True, drop_last=True))
    assert not torch.equal(model.vamp.pseudo_inputs.detach(), before)
    trainer.save_checkpoint(tmp_path / "vae.ckpt")
    loaded = VAE(model.config, model.spec)
    loaded.load_state_dict(torch.load(tmp_path / "vae.ckpt", weights_only=True)["state_dict"])
    z = torch.randn(5, 4)
    torch.testing.assert_close(loaded.log_prior(z), model.log_prior(z))


def test_health_signals_leave_out_the_per_dim_kl_of_a_mixture_prior():
    model = vamp_vae()
    model.training_step((torch.rand(6, 1, 28, 28), torch.zeros(6, dtype=torch.long)), 0)
    signals = model.pop_health_signals()
    assert "kl_per_dim" not in signals and "active_units" in signals
    standard = vamp_vae(prior="standard")
    standard.training_step((torch.rand(6, 1, 28, 28), torch.zeros(6, dtype=torch.long)), 0)
    assert len(standard.pop_health_signals()["kl_per_dim"]) == 4


@pytest.mark.parametrize(
    "override, message",
    [
        ({"prior": "flow"}, "model.prior='flow' is not known; allowed: standard, vampprior"),
        ({"pseudo_inputs": 0}, "model.pseudo_inputs=0 must be a finite number >= 1"),
        ({"prior": "vampprior", "free_bits": 0.5}, "with model.prior=vampprior set model.free_bits=0"),
        ({"prior": "vampprior", "conditional": True}, "model.prior=vampprior is for the unconditional VAE"),
    ],
)
def test_bad_prior_settings_are_one_line_config_errors(override, message):
    with pytest.raises(ConfigError) as err:
        VAEConfig(**override)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_prior_is_fixed_on_resume():
    assert {"prior", "pseudo_inputs"} <= set(VAEConfig.resume_fixed)

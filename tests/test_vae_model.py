"""The VAE module: shapes for every net x size x channels, config contract, panels, training wiring."""

from __future__ import annotations

import dataclasses
import math

import pytest
import pytorch_lightning as pl
import torch
from builders import build
from trainers import bare_trainer

from genlab.config.spec import DataSpec
from genlab.data import TensorBatches
from genlab.models.vae import VAE, VAEConfig
from genlab.models.vae.objective import gaussian_kl
from genlab.utils.errors import ConfigError


def image_spec(size: int = 28, channels: int = 1) -> DataSpec:
    return DataSpec((channels, size, size), (0.0, 1.0), name="test")


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("net", ["conv", "resnet", "mlp"])
def test_shapes_for_every_net_size_and_channels(net, size, channels):
    model = build(VAE, image_spec(size, channels), net=net, latent_dim=8, channels=8, hidden=32)
    x = torch.rand(3, channels, size, size)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (3, 8)
    assert model.decoder_output(mu).shape == x.shape
    assert model.reconstruct(x).shape == x.shape
    samples = model.sample(5)
    assert samples.shape == (5, channels, size, size) and 0 <= samples.min() and samples.max() <= 1
    terms = model.elbo_terms(model.binarize(x))
    assert terms.recon.shape == (3,) and terms.kl_per_dim.shape == (3, 8)


def test_supported_sizes_and_value_range_contract():
    assert VAE.supported_image_sizes(VAEConfig(net="conv")) == (28, 32, 64)
    assert VAE.supported_image_sizes(VAEConfig(net="resnet")) == (28, 32, 64)
    assert VAE.supported_image_sizes(VAEConfig(net="mlp")) is None
    assert VAE.expected_value_range(VAEConfig()) == (0.0, 1.0)
    with pytest.raises(ConfigError, match="dataset.image_size=16"):
        build(VAE, image_spec(16), net="conv")
    with pytest.raises(ConfigError, match="value_range"):
        build(VAE, DataSpec((1, 28, 28), (-1.0, 1.0)), net="conv")
    build(VAE, image_spec(16), net="mlp", hidden=16)  # mlp takes any size


def test_vectors_only_with_mlp_and_gaussian_likelihood():
    spec = DataSpec((2,), None, name="ring")
    assert VAE.supports_vectors(VAEConfig(net="mlp", likelihood="gaussian", binarize=False))
    with pytest.raises(ConfigError, match="model.net=mlp"):
        build(VAE, spec, net="conv")
    model = build(VAE, spec, net="mlp", likelihood="gaussian", binarize=False, latent_dim=2, hidden=16)
    assert model.sample(4).shape == (4, 2)


@pytest.mark.parametrize(
    "override, message",
    [
        ({"net": "unet"}, "model.net='unet' is not known; allowed: conv, mlp, resnet"),
        ({"likelihood": "laplace"}, "model.likelihood='laplace' is not known"),
        ({"latent_dim": 0}, "model.latent_dim=0 must be a finite number >= 1"),
        ({"beta": -1.0}, "model.beta=-1.0 must be a finite number >= 0"),
        ({"free_bits": -0.5}, "model.free_bits=-0.5 must be a finite number >= 0"),
        (
            {"gaussian_std": 0.0, "likelihood": "gaussian", "binarize": False},
            "model.gaussian_std=0.0 must be a finite number > 0",
        ),
        ({"likelihood": "gaussian"}, "model.binarize=true needs model.likelihood=bernoulli"),
        ({"learn_std": True}, "model.learn_std=true needs model.likelihood=gaussian"),
    ],
)
def test_bad_config_values_raise_one_line_config_errors(override, message):
    with pytest.raises(ConfigError) as err:
        VAEConfig(**override)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_decode_is_in_data_space_for_each_likelihood():
    z = 3 * torch.randn(16, 4)
    bern = build(VAE, image_spec(), net="mlp", latent_dim=4, hidden=16)
    torch.testing.assert_close(bern.decode(z), torch.sigmoid(bern.decoder_output(z)))
    gauss = build(
        VAE, image_spec(), net="mlp", latent_dim=4, hidden=16, likelihood="gaussian", binarize=False
    )
    torch.testing.assert_close(gauss.decode(z), gauss.decoder_output(z).clamp(0, 1))


def test_gaussian_std_fixed_or_learned():
    fixed = build(
        VAE, image_spec(), net="mlp", hidden=16, likelihood="gaussian", binarize=False, gaussian_std=0.2
    )
    learned = build(
        VAE, image_spec(), net="mlp", hidden=16, likelihood="gaussian", binarize=False, learn_std=True
    )
    assert fixed.log_std.item() == pytest.approx(math.log(0.2)) and not fixed.log_std.requires_grad
    assert any(p is learned.log_std for p in learned.parameters())
    x, z = torch.rand(2, 1, 28, 28), torch.randn(2, 32)
    expected = 0.5 * math.log(2 * math.pi) + math.log(0.2) + 0.5 * ((x - fixed.decoder_output(z)) / 0.2) ** 2
    torch.testing.assert_close(fixed.recon_nll(x, z), expected.flatten(1).sum(1))


def test_binarize_is_bernoulli_and_reproducible_with_a_generator():
    model = build(VAE, image_spec(), net="mlp", hidden=16)
    x = torch.full((200, 1, 28, 28), 0.3)
    b = model.binarize(x, generator=torch.Generator().manual_seed(0))
    assert set(b.unique().tolist()) == {0.0, 1.0} and abs(b.mean().item() - 0.3) < 0.01
    torch.testing.assert_close(b, model.binarize(x, generator=torch.Generator().manual_seed(0)))
    off = build(VAE, image_spec(), net="mlp", hidden=16, likelihood="gaussian", binarize=False)
    assert off.binarize(x) is x


def test_loss_weights_kl_by_beta_and_clamps_free_bits():
    torch.manual_seed(0)
    x = torch.bernoulli(torch.full((8, 1, 28, 28), 0.2))
    model = build(VAE, image_spec(), net="mlp", hidden=16, latent_dim=4, beta=3.0)
    terms = model.elbo_terms(x)
    losses = model._losses(terms)
    recon, kl = terms.recon.mean(), terms.kl.mean()
    torch.testing.assert_close(losses["loss"], recon + 3.0 * kl)
    torch.testing.assert_close(losses["neg_elbo"], recon + kl)  # beta = 1 whatever the training beta
    model.config = dataclasses.replace(
        model.config, free_bits=100.0
    )  # above every dim's KL: latent_dim * 100
    torch.testing.assert_close(model._losses(terms)["loss"], recon + 3.0 * 4 * 100.0)
    torch.testing.assert_close(model._losses(terms)["kl"], kl)  # logged KL is the true one


class Recorder(pl.Callback):
    def __init__(self) -> None:
        self.beta: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.beta.append(float(trainer.callback_metrics["train/beta"]))


def tiny_trainer(max_steps: int, callbacks=()) -> pl.Trainer:
    return bare_trainer(max_steps, callbacks=list(callbacks), num_sanity_val_steps=0, log_every_n_steps=1)


def random_batches(n: int = 64, batch_size: int = 8, shuffle: bool = True) -> TensorBatches:
    data = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    return TensorBatches(data, None, batch_size, shuffle=shuffle, drop_last=shuffle)


def test_kl_warmup_ramps_beta_linearly_during_training():
    model = build(VAE, image_spec(), net="mlp", hidden=16, latent_dim=4, beta=2.0, kl_warmup_steps=4)
    recorder = Recorder()
    tiny_trainer(6, [recorder]).fit(model, random_batches())
    assert recorder.beta == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]


def test_grad_clip_bounds_the_gradient_norm():
    norms = []

    class GradNorm(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):  # grads as stepped
            norms.append(torch.nn.utils.get_total_norm([p.grad for p in pl_module.parameters()]).item())

    model = build(VAE, image_spec(), net="mlp", hidden=16, latent_dim=4, grad_clip=0.5)
    tiny_trainer(3, [GradNorm()]).fit(model, random_batches())
    assert len(norms) == 3 and max(norms) == pytest.approx(0.5, rel=1e-4)  # unclipped norms are ~5-10


def test_validation_logs_every_metric_and_stores_reconstruction_inputs():
    model = build(VAE, image_spec(), net="mlp", hidden=32, latent_dim=4, iw_samples=5, iw_examples=20)
    trainer = tiny_trainer(1)
    first = trainer.validate(model, random_batches(40, 16, shuffle=False), verbose=False)[0]
    second = trainer.validate(model, random_batches(40, 16, shuffle=False), verbose=False)[0]
    expected = {"val/loss", "val/recon", "val/kl", "val/neg_elbo", "val/iw_nll", "val/active_units"}
    assert expected <= set(first)
    assert first == second  # fixed validation binarization and z: identical numbers
    assert first["val/neg_elbo"] == pytest.approx(first["val/recon"] + first["val/kl"], rel=1e-5)
    assert 0 <= first["val/active_units"] <= 4
    assert first["val/iw_nll"] < first["val/neg_elbo"] + 5.0
    assert int(model.recon_count) == 16 and set(model.recon_inputs[:16].unique().tolist()) <= {0.0, 1.0}


def test_image_panels_reconstructions_samples_traversal_interpolation():
    model = build(VAE, image_spec(), net="conv", channels=8, latent_dim=10)
    assert "reconstructions" not in model.image_panels()  # nothing stored before the first validation
    x = torch.rand(4, 1, 28, 28)
    model.recon_inputs[:4] = x
    model.recon_count.fill_(4)
    panels = model.image_panels()
    assert set(panels) == {"samples", "interpolation", "traversal", "reconstructions"}
    images, nrow = panels["reconstructions"]
    assert images.shape == (8, 1, 28, 28) and nrow % 2 == 0
    torch.testing.assert_close(images[0::2], x)
    torch.testing.assert_close(images[1::2], model.reconstruct(x))
    traversal, steps = panels["traversal"]
    assert traversal.shape == (8 * steps, 1, 28, 28)
    # row j moves only latent j: rebuild row 2 by hand
    z = model.fixed_latents()[0].repeat(steps, 1)
    z[:, 2] = torch.linspace(-3, 3, steps)
    torch.testing.assert_close(traversal[2 * steps : 3 * steps], model.decode(z))
    for images, _ in panels.values():
        assert images.min() >= 0 and images.max() <= 1


def test_checkpoint_roundtrip_keeps_weights_and_panel_inputs(tmp_path):
    model = build(VAE, image_spec(), net="conv", channels=8, latent_dim=4, compile=False)
    model.recon_inputs[:3] = 1.0
    model.recon_count.fill_(3)
    trainer = tiny_trainer(1)
    trainer.fit(model, random_batches())
    trainer.save_checkpoint(tmp_path / "vae.ckpt")
    loaded = VAE(model.config, model.spec)
    loaded.load_state_dict(torch.load(tmp_path / "vae.ckpt", weights_only=True)["state_dict"])
    assert int(loaded.recon_count) == 3
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(loaded.reconstruct(x), model.reconstruct(x))
    mu, logvar = loaded.encode(x)
    assert torch.isfinite(gaussian_kl(mu, logvar)).all()


def test_train_samples_k_trains_on_the_iwae_bound_of_the_same_draws():
    from genlab.models.vae import iwae_nll

    torch.manual_seed(0)
    model = build(VAE, image_spec(), net="mlp", latent_dim=4, hidden=32, train_samples=5)
    x = model.binarize(torch.rand(6, 1, 28, 28))
    terms = model.elbo_terms(x, generator=torch.Generator().manual_seed(3), samples=5)
    loss = model._losses(terms)["loss"]
    bound = iwae_nll(model, x, k=5, generator=torch.Generator().manual_seed(3)).mean()
    torch.testing.assert_close(loss, bound)
    # the IWAE bound is tighter than the mean single-sample negative ELBO of the same five draws
    assert loss < (-(terms.log_px + terms.log_ratio).mean(0)).mean()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_training_step_uses_train_samples_and_warms_up_the_prior_ratio(monkeypatch):
    from genlab.models.vae.objective import iwae_bound, log_prior_ratio, sample_log_likelihoods

    monkeypatch.setattr(VAE, "global_step", property(lambda self: 2))  # half-way through a 4-step warm-up
    model = build(VAE, image_spec(), net="mlp", latent_dim=4, hidden=32, train_samples=5, kl_warmup_steps=4)
    batch = (torch.rand(6, 1, 28, 28), torch.zeros(6, dtype=torch.long))
    torch.manual_seed(7)
    loss = model.training_step(batch, 0)
    torch.manual_seed(7)  # the same binarization and the same five draws of z per image
    x = model.binarize(batch[0])
    mu, logvar = model.encode(x)
    z, log_px = sample_log_likelihoods(model, x, mu, logvar, torch.randn(5, *mu.shape))
    torch.testing.assert_close(loss, iwae_bound(log_px, log_prior_ratio(z, mu, logvar), beta=0.5).mean())


def test_train_samples_1_keeps_the_closed_form_kl_objective():
    torch.manual_seed(0)
    model = build(VAE, image_spec(), net="mlp", latent_dim=4, hidden=32)
    x = model.binarize(torch.rand(6, 1, 28, 28))
    terms = model.elbo_terms(x, generator=torch.Generator().manual_seed(3))
    losses = model._losses(terms)
    torch.testing.assert_close(
        losses["loss"], terms.recon.mean() + gaussian_kl(*model.encode(x)).sum(1).mean()
    )


def test_free_bits_with_the_iwae_objective_is_refused():
    with pytest.raises(ConfigError, match="model.free_bits=0.5 applies to the ELBO only"):
        VAEConfig(train_samples=5, free_bits=0.5)
    with pytest.raises(ConfigError, match="model.train_samples=0"):
        VAEConfig(train_samples=0)


def test_validation_loss_is_the_training_objective_with_train_samples():
    from genlab.models.vae import iwae_nll
    from genlab.models.vae.module import VAL_SEED

    model = build(VAE, image_spec(), net="mlp", latent_dim=4, hidden=32, train_samples=5, iw_examples=0)
    logged = {}
    model.log = lambda name, value, **kw: logged.__setitem__(name, value)
    batch = (torch.rand(6, 1, 28, 28), torch.zeros(6, dtype=torch.long))
    model.on_validation_epoch_start()
    model.validation_step(batch, 0)
    g = torch.Generator().manual_seed(VAL_SEED)  # the same binarization and the same five draws of z
    x = model.binarize(batch[0], generator=g)
    torch.testing.assert_close(logged["val/loss"], iwae_nll(model, x, k=5, generator=g).mean())

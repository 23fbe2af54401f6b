"""Class-conditional GANs and VAEs as modules: label plumbing, the projection discriminator, the CVAE's ELBO,
class grids, and training with every loss, penalty and switch that combines with conditioning."""

from __future__ import annotations

import pytest
import torch
from builders import build
from trainers import bare_trainer

from genlab.config.spec import DataSpec
from genlab.data import TensorBatches
from genlab.models.base import CLASS_GRID_COLUMNS
from genlab.models.gan import GAN, GANConfig
from genlab.models.gan.conditioning import ConditionalBatchNorm2d, ProjectionDiscriminator
from genlab.models.gan.nets import build_discriminator
from genlab.models.vae import VAE, iwae_nll
from genlab.utils.errors import ConfigError

IMAGES = DataSpec((1, 32, 32), (-1.0, 1.0), num_classes=3, name="tiny")
POINTS = DataSpec((2,), None, num_classes=8, name="points")
UNLABELLED = DataSpec((1, 32, 32), (-1.0, 1.0), name="faces")
TINY = dict(latent_dim=8, g_width=4, d_width=4, class_dim=4)
TINY_MLP = dict(net="mlp", latent_dim=4, g_hidden=[16], d_hidden=[16], class_dim=4)


def gan(net: str, **keys) -> GAN:
    spec, sizes = (POINTS, TINY_MLP) if net == "mlp" else (IMAGES, {**TINY, "net": net})
    return build(GAN, spec, conditional=True, **{**sizes, **keys})


def labelled_batches(spec: DataSpec, n: int = 48, batch_size: int = 16) -> TensorBatches:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, *spec.shape, generator=g) * 2 - 1
    y = torch.randint(int(spec.num_classes), (n,), generator=g)
    return TensorBatches(x, y, batch_size=batch_size)


def differ(a, b) -> torch.Tensor:
    """Per sample: whether two batches differ by more than 0.1% of their scale (fresh nets: small changes)."""
    scale = torch.maximum(a.flatten(1).abs().amax(1), b.flatten(1).abs().amax(1))
    return (a - b).flatten(1).abs().amax(1) > 1e-3 * scale


# ---- the label reaches the sample ----------------------------------------------------------------
@pytest.mark.parametrize("net,class_dim", [("dcgan", 4), ("dcgan", 0), ("resnet", 4), ("mlp", 4)])
def test_a_gan_sample_changes_with_the_label_alone_and_is_fixed_by_label_and_noise(net, class_dim):
    model = gan(net, class_dim=class_dim)  # class_dim=0: the label enters through conditional BatchNorm only
    assert (model.generator.input.embed is None) == (class_dim == 0)
    k = model.num_classes
    z = torch.randn(6, model.latent_dim, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(6) % k
    a = model.decode(z, labels)
    b = model.decode(z, (labels + 1) % k)  # only the label changes
    assert differ(a, b).all()
    assert torch.equal(model.decode(z, labels), a)  # same label and noise: same sample
    torch.testing.assert_close(model.decode(z[:2], labels[:2]), a[:2])  # not the rest of the batch's
    # sample(): the same seed draws the same noise; the labels decide the rest
    same = [model.sample(6, torch.Generator().manual_seed(3), labels=labels) for _ in range(2)]
    other = model.sample(6, torch.Generator().manual_seed(3), labels=(labels + 1) % k)
    assert torch.equal(same[0], same[1]) and differ(same[0], other).all()


def test_decode_without_labels_cycles_the_classes_and_draws_no_random_numbers():
    model = gan("dcgan")
    z = torch.randn(5, model.latent_dim)
    state = torch.get_rng_state()
    unlabelled = model.decode(z)  # the divergence guard probes this way during training
    assert torch.equal(torch.get_rng_state(), state)  # a resumed run continues on the same random stream
    torch.testing.assert_close(unlabelled, model.decode(z, torch.tensor([0, 1, 2, 0, 1])))
    with pytest.raises(ValueError, match="labels must be classes in"):
        model.decode(z, torch.tensor([0, 1, 2, 3, 0]))


@pytest.mark.parametrize("net", ["conv", "mlp"])
def test_a_cvae_sample_changes_with_the_label_alone(net):
    spec = DataSpec((1, 28, 28), (0.0, 1.0), num_classes=4, name="tiny")
    model = build(VAE, spec, net=net, latent_dim=4, channels=4, hidden=16, conditional=True)
    z = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(4)
    a, b = model.decode(z, labels), model.decode(z, labels.flip(0))
    assert differ(a, b).all()
    assert torch.equal(model.decode(z, labels), a)
    with pytest.raises(ValueError, match="needs the labels"):
        model.encode(torch.rand(2, 1, 28, 28))  # q(z|x,y) cannot guess y


def test_conditional_generators_use_class_conditional_batch_norm():
    for net in ("dcgan", "resnet"):
        model = gan(net)
        norms = [m for m in model.generator.modules() if isinstance(m, ConditionalBatchNorm2d)]
        assert norms and all(m.embed.num_embeddings == 3 for m in norms)
        assert isinstance(model.discriminator, ProjectionDiscriminator)
    # unconditional nets keep their plain layers and state-dict keys
    plain = build(GAN, IMAGES, **{k: v for k, v in TINY.items() if k != "class_dim"})
    assert not any(isinstance(m, ConditionalBatchNorm2d) for m in plain.generator.modules())
    assert (
        "generator.net.1.weight" in plain.state_dict() and "discriminator.net.0.weight" in plain.state_dict()
    )


# ---- the projection discriminator --------------------------------------------------------------
def hand_features(base, net: str, x):
    """phi(x) of each plain discriminator, spelled out from its layers."""
    if net == "dcgan":
        return base.net[:-1](x).flatten(1)  # the last 4x4 map, before the final 4x4 convolution
    if net == "resnet":
        return torch.relu(base.blocks(x)).sum(dim=(2, 3))  # global sum pooling
    return base.net[:-1](x)


@pytest.mark.parametrize("net", ["dcgan", "resnet", "mlp"])
def test_projection_output_is_the_unconditional_head_plus_embedding_inner_product(net):
    spec = POINTS if net == "mlp" else IMAGES
    sizes = TINY_MLP if net == "mlp" else {**TINY, "net": net}
    d = build_discriminator(GANConfig(conditional=True, **sizes), spec).eval()
    base = d.base
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, *spec.shape, generator=g)
    y = torch.tensor([0, 1, 2, 1, 0])
    with torch.no_grad():
        torch.nn.init.normal_(d.embed.weight, 0.0, 0.5, generator=g)  # a trained-looking embedding
        phi = hand_features(base, net, x)
        last = base.net[-1] if net != "resnet" else base.linear
        psi = phi @ last.weight.reshape(-1) + last.bias  # the final layer is linear in phi
        torch.testing.assert_close(psi, base(x))  # == the plain, unconditional D
        expected = torch.stack(
            [psi[i] + sum(d.embed.weight[y[i], j] * phi[i, j] for j in range(phi.shape[1])) for i in range(5)]
        )
        torch.testing.assert_close(d(x, y), expected, rtol=1e-4, atol=1e-4)
        logits, classes = d(x, y, with_classes=True)
        assert classes is None and torch.equal(logits, d(x, y))


def test_acgan_head_and_spectral_norm_of_the_projection():
    cfg = GANConfig(conditional=True, ac_weight=1.0, spectral_norm=True, **TINY)
    d = build_discriminator(cfg, IMAGES)
    assert hasattr(d.embed, "parametrizations")  # the embedding is spectral-normalized like every D layer
    logits, classes = d(torch.randn(4, 1, 32, 32), torch.tensor([0, 1, 2, 0]), with_classes=True)
    assert logits.shape == (4,) and classes.shape == (4, 3)


# ---- the CVAE reduces to the VAE -----------------------------------------------------------------
def fold_label_into_bias(cvae: VAE, vae: VAE) -> dict[str, torch.Tensor]:
    """With one class the one-hot label is the constant 1: its weight column is an extra bias. The VAE weights
    that compute exactly what ``cvae`` computes."""
    cond, plain = cvae.state_dict(), vae.state_dict()
    out = {k: v.clone() for k, v in cond.items() if k in plain}
    for key, weight in cond.items():
        if key in plain and plain[key].shape != weight.shape:  # a layer that also reads the label
            out[key] = weight[:, :-1].clone()
            bias = key.removesuffix("weight") + "bias"
            out[bias] = cond[bias] + weight[:, -1]
    return out


@pytest.mark.parametrize("net", ["mlp", "conv", "resnet"])
def test_cvae_elbo_with_a_single_class_equals_the_vae_elbo(net):
    spec = DataSpec((1, 28, 28), (0.0, 1.0), num_classes=1, name="one")
    sizes = dict(net=net, latent_dim=4, channels=4, hidden=16)
    cvae, vae = build(VAE, spec, conditional=True, **sizes), build(VAE, spec, **sizes)
    with torch.no_grad():  # the label columns are not zero: the label's weight still reaches the objective
        for p in cvae.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.05)
    vae.load_state_dict(fold_label_into_bias(cvae, vae))
    x = vae.binarize(torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(1)))
    y = torch.zeros(6, dtype=torch.long)
    plain = vae.elbo_terms(x, generator=torch.Generator().manual_seed(2))
    cond = cvae.elbo_terms(x, generator=torch.Generator().manual_seed(2), labels=y)
    torch.testing.assert_close(cond.recon, plain.recon)
    torch.testing.assert_close(cond.kl_per_dim, plain.kl_per_dim)
    iw = [
        iwae_nll(m, x, k=5, generator=torch.Generator().manual_seed(3), **kw)
        for m, kw in ((vae, {}), (cvae, {"labels": y}))
    ]
    torch.testing.assert_close(iw[0], iw[1])
    # and the label did matter: zeroing its weight columns changes the conditional ELBO
    with torch.no_grad():
        for key, weight in cvae.state_dict().items():
            if weight.dim() == 2 and weight.shape != vae.state_dict()[key].shape:
                weight[:, -1] = 0
    changed = cvae.elbo_terms(x, generator=torch.Generator().manual_seed(2), labels=y)
    assert not torch.allclose(changed.recon + changed.kl, cond.recon + cond.kl)


# ---- grids ------------------------------------------------------------------------------------------
def test_class_grid_panel_has_one_row_per_class_with_the_fixed_latents():
    model = gan("dcgan")
    panels = model.image_panels()
    images, per_row = panels["samples"]
    assert per_row == CLASS_GRID_COLUMNS and images.shape == (3 * CLASS_GRID_COLUMNS, 1, 32, 32)
    z = model.fixed_latents()[:CLASS_GRID_COLUMNS]
    for c in range(3):
        row = model.to_unit(model.decode(z, torch.full((CLASS_GRID_COLUMNS,), c)))
        torch.testing.assert_close(images[c * CLASS_GRID_COLUMNS : (c + 1) * CLASS_GRID_COLUMNS], row)
    interpolation, steps = panels["interpolation"]
    assert interpolation.shape[0] == 8 * steps
    # the VAE's panels too: a class grid, traversal of class 0, reconstructions with their own labels
    spec = DataSpec((1, 28, 28), (0.0, 1.0), num_classes=2, name="tiny")
    vae = build(VAE, spec, net="mlp", latent_dim=4, hidden=16, conditional=True)
    vae.recon_inputs[:2] = torch.rand(2, 1, 28, 28)
    vae.recon_labels[:2] = torch.tensor([1, 0])
    vae.recon_count.fill_(2)
    panels = vae.image_panels()
    assert panels["samples"][0].shape[0] == 2 * CLASS_GRID_COLUMNS
    assert {"traversal", "reconstructions", "interpolation"} <= set(panels)


# ---- training: every loss, penalty and switch that combines with conditioning -----------------------
@pytest.mark.parametrize(
    "net,keys",
    [
        ("dcgan", {}),
        ("dcgan", {"loss": "hinge", "spectral_norm": True}),
        ("dcgan", {"loss": "wgan", "n_critic": 2}),  # WGAN-GP: interpolates of the same class
        ("dcgan", {"r1_gamma": 1.0, "ema": True}),
        ("dcgan", {"diffaugment": "translation,cutout,color", "ac_weight": 1.0}),
        ("resnet", {"loss": "hinge", "ac_weight": 0.5}),
        ("mlp", {"gp_lambda": 1.0}),
    ],
    ids=["ns", "hinge-sn", "wgan-gp", "r1-ema", "diffaugment-acgan", "resnet-acgan", "mlp-gp"],
)
def test_conditional_gan_trains_with_every_setting(one_thread, net, keys):
    model = gan(net, **keys)
    embeddings = {name: p.detach().clone() for name, p in model.named_parameters() if "embed" in name}
    assert any(n.startswith("generator") for n in embeddings) and any(
        n.startswith("discrim") for n in embeddings
    )
    trainer = bare_trainer(3, limit_val_batches=1, val_check_interval=3, log_every_n_steps=1)
    trainer.fit(model, labelled_batches(model.spec), labelled_batches(model.spec))
    metrics = trainer.callback_metrics
    assert all(torch.isfinite(metrics[k]) for k in ("train/loss_d", "train/loss_g", "val/loss_d"))
    if keys.get("ac_weight"):
        assert "train/ac_loss" in metrics and "val/ac_loss" in metrics
    for name, before in embeddings.items():  # the labels took part in every update
        assert not torch.equal(model.get_parameter(name).detach(), before), name


def test_conditional_vae_trains_and_validates_with_labels(one_thread):
    spec = DataSpec((1, 28, 28), (0.0, 1.0), num_classes=3, name="tiny")
    model = build(VAE, spec, net="conv", latent_dim=4, channels=4, iw_samples=2, conditional=True)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(32, 1, 28, 28, generator=g), torch.randint(3, (32,), generator=g)
    trainer = bare_trainer(2, limit_val_batches=1, val_check_interval=2)
    trainer.fit(model, TensorBatches(x, y, 16), TensorBatches(x, y, 16, shuffle=False))
    assert torch.isfinite(trainer.callback_metrics["val/iw_nll"])
    # the reconstruction panel keeps the first validation images with their own labels
    assert int(model.recon_count) == 16 and model.recon_labels[:16].tolist() == y[:16].tolist()


# ---- config errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "keys,needle",
    [
        (dict(conditional=True, pack=2), "model.pack=2 cannot be combined with model.conditional=true"),
        (dict(ac_weight=0.5), "model.ac_weight=0.5 needs model.conditional=true"),
        (dict(conditional=True, class_dim=-1), "model.class_dim=-1 must be a finite number >= 0"),
        (
            dict(conditional=True, class_dim=0, net="mlp"),
            "model.class_dim=0 leaves net=mlp without the label",
        ),
    ],
)
def test_gan_settings_that_cannot_be_conditional(keys, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        GANConfig(**keys)


def test_unlabelled_data_cannot_train_a_conditional_model():
    with pytest.raises(
        ConfigError, match="model.conditional=true needs a labelled dataset, but dataset faces"
    ):
        build(GAN, UNLABELLED, conditional=True, **TINY)
    with pytest.raises(ConfigError, match="needs a labelled dataset"):
        build(VAE, DataSpec((1, 28, 28), (0.0, 1.0), name="faces"), net="mlp", conditional=True)

"""GAN networks: shapes for every net x size x channels, DCGAN details, spectral norm, DiffAugment."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genlab.config.spec import DataSpec
from genlab.models.gan.config import GANConfig
from genlab.models.gan.diffaugment import color, cutout, diff_augment, translation
from genlab.models.gan.nets import DCGANDiscriminator, DCGANGenerator, build_discriminator, build_generator

SMALL = dict(latent_dim=8, g_width=4, d_width=4)


@pytest.mark.parametrize(
    "net,size",
    [("dcgan", 32), ("dcgan", 64), ("dcgan", 128), ("resnet", 32), ("resnet", 64)],
)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("pack", [1, 2])
def test_image_net_shapes(net, size, channels, pack):
    cfg = GANConfig(net=net, pack=pack, **SMALL)
    spec = DataSpec((channels, size, size), (-1.0, 1.0))
    g, d = build_generator(cfg, spec), build_discriminator(cfg, spec)
    x = g(torch.randn(4, 8))
    assert x.shape == (4, channels, size, size)
    assert x.abs().max() <= 1  # tanh output
    logits = d(torch.randn(4 // pack, pack * channels, size, size))
    assert logits.shape == (4 // pack,)


@pytest.mark.parametrize("pack", [1, 4])
def test_mlp_shapes(pack):
    cfg = GANConfig(net="mlp", latent_dim=3, g_hidden=[16, 16], d_hidden=[8], pack=pack)
    spec = DataSpec((2,), None)
    g, d = build_generator(cfg, spec), build_discriminator(cfg, spec)
    assert g(torch.randn(8, 3)).shape == (8, 2)
    assert d(torch.randn(8 // pack, pack * 2)).shape == (8 // pack,)
    assert [m.out_features for m in g.modules() if isinstance(m, nn.Linear)] == [16, 16, 2]


def test_dcgan_follows_radford_et_al():
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=100, channels=3, size=64, width=64)
    d = DCGANDiscriminator(in_channels=3, size=64, width=64)
    convs = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [512, 256, 128, 64, 3]
    assert isinstance(list(g.modules())[-1], nn.Tanh)
    big = convs[1].weight
    assert big.mean().abs() < 1e-3 and big.std().item() == pytest.approx(0.02, rel=0.05)
    bn = next(m for m in g.modules() if isinstance(m, nn.BatchNorm2d))
    assert bn.weight.mean().item() == pytest.approx(1.0, abs=0.01)
    # D: no BN right after the first conv, LeakyReLU(0.2), and a logit output (no sigmoid)
    layers = list(d.net)
    assert isinstance(layers[0], nn.Conv2d) and isinstance(layers[1], nn.LeakyReLU)
    assert layers[1].negative_slope == 0.2
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 3
    assert not any(isinstance(m, nn.Sigmoid) for m in d.modules())


def test_discriminator_outputs_unbounded_logits():
    d = DCGANDiscriminator(in_channels=1, size=32, width=8)
    with torch.no_grad():
        d.net[-1].weight.mul_(1000)
    out = d(torch.randn(8, 1, 32, 32))
    assert (out.abs() > 1).any()


def test_batch_norm_dropped_from_d_with_per_sample_penalties_or_spectral_norm():
    spec = DataSpec((1, 32, 32), (-1.0, 1.0))
    for cfg in (GANConfig(loss="wgan"), GANConfig(r1_gamma=1.0), GANConfig(spectral_norm=True)):
        assert not any(isinstance(m, nn.BatchNorm2d) for m in build_discriminator(cfg, spec).modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in build_discriminator(GANConfig(), spec).modules())


@pytest.mark.parametrize(
    "net,spec",
    [
        ("dcgan", DataSpec((3, 32, 32), (-1.0, 1.0))),
        ("resnet", DataSpec((1, 32, 32), (-1.0, 1.0))),
        ("mlp", DataSpec((2,), None)),
    ],
)
def test_spectral_norm_bounds_every_discriminator_layer(net, spec):
    torch.manual_seed(0)
    d = build_discriminator(GANConfig(net=net, spectral_norm=True, d_width=8, d_hidden=[32, 32]), spec)
    layers = [m for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers and all(hasattr(m, "parametrizations") for m in layers)
    x = torch.randn(4, *((spec.channels, 32, 32) if spec.is_image else (2,)))
    for _ in range(10):  # one power iteration per training-mode forward
        d(x)
    for m in layers:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
        raw = torch.linalg.matrix_norm(m.parametrizations.weight.original.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.02)
        assert raw.item() != pytest.approx(1.0, abs=0.02)  # the bound comes from the normalization


# ---- DiffAugment -----------------------------------------------------------------------------------
def zero_shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Independent reference for a translation that fills with zeros."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    out[..., max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)] = x[
        ..., max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)
    ]
    return out


def test_translation_is_a_zero_filled_shift_of_at_most_an_eighth():
    torch.manual_seed(0)
    x = torch.randn(6, 3, 16, 16)
    out = translation(x)
    assert out.shape == x.shape
    for xi, oi in zip(x, out, strict=True):
        matches = [
            (dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if torch.equal(zero_shift(xi, dy, dx), oi)
        ]
        assert len(matches) == 1
    assert not torch.equal(out, x)


def test_cutout_zeroes_one_square_per_image():
    torch.manual_seed(0)
    out = cutout(torch.ones(16, 2, 16, 16))
    zeros = (out[:, 0] == 0).sum(dim=(1, 2))
    assert ((zeros > 0) & (zeros <= 8 * 8)).all()  # a clipped 8x8 square
    assert torch.equal(out[:, 0], out[:, 1])  # the same square in every channel


def test_color_is_a_per_sample_change_that_keeps_shapes():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    out = color(x)
    assert out.shape == x.shape and not torch.allclose(out, x)


def test_diff_augment_is_differentiable_and_changes_pixels():
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    out = diff_augment(x, ["color", "translation", "cutout"])
    assert out.shape == x.shape and not torch.allclose(out, x)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0

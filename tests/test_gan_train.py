"""Real GAN training: an MLP GAN covers the modes of the 2D ring; DCGAN steps on real MNIST."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from builders import build
from test_gan_module import fit
from torchvision.datasets import MNIST

from genlab.config.spec import DataSpec
from genlab.data.loader import TensorBatches
from genlab.data.synthetic import GaussianMixtureDataModule
from genlab.metrics.modes import mode_stats
from genlab.models.gan import GAN

RING_GAN = dict(net="mlp", latent_dim=8, g_hidden=[128, 128], d_hidden=[128, 128], ema=True, ema_decay=0.99)
RING_STEPS = 1500


@pytest.mark.slow  # a quality test: 1500 training steps
def test_mlp_gan_covers_the_modes_of_the_ring(one_thread):
    pl.seed_everything(0, verbose=False)
    dm = build(GaussianMixtureDataModule, name="ring", batch_size=512, seed=0, on_device="false")
    model = build(GAN, dm.spec, optimizer=dict(lr=1e-3), **RING_GAN)
    fit(model, dm, steps=RING_STEPS, log_every_n_steps=50)
    stats = mode_stats(model.sample(2500, generator=torch.Generator().manual_seed(1)), dm.modes, dm.mode_std)
    assert stats["modes_covered"] >= 6, stats
    assert stats["hq_fraction"] > 0.3, stats


def mnist_batches(root, n: int = 256, batch_size: int = 32) -> TensorBatches:
    """The first ``n`` real MNIST training digits, padded to 32x32, in [-1, 1]."""
    data = MNIST(str(root), train=True, download=True).data[:n]  # files present: verified by MD5, no request
    x = F.pad(data.float().div(255).unsqueeze(1), [2, 2, 2, 2]) * 2 - 1
    return TensorBatches(x, None, batch_size=batch_size)


def test_dcgan_steps_on_real_mnist(real_data_dir):
    pl.seed_everything(0, verbose=False)
    model = build(
        GAN,
        data=DataSpec((1, 32, 32), (-1.0, 1.0), name="mnist"),
        latent_dim=32,
        g_width=16,
        d_width=16,
        ema=True,
        ema_decay=0.5,
    )
    g_before = [p.detach().clone() for p in model.generator.parameters()]
    d_before = [p.detach().clone() for p in model.discriminator.parameters()]
    trainer = fit(model, mnist_batches(real_data_dir), steps=3)
    metrics = trainer.callback_metrics
    assert all(torch.isfinite(metrics[f"train/{k}"]) for k in ("loss_d", "loss_g", "d_real", "d_fake"))
    for before, net in ((g_before, model.generator), (d_before, model.discriminator)):
        assert all(not torch.equal(b, p) for b, p in zip(before, net.parameters(), strict=True))
    ema = list(model.g_ema.module.parameters())
    assert any(not torch.allclose(e, p) for e, p in zip(ema, model.generator.parameters(), strict=True))
    samples = model.sample(4)
    assert samples.shape == (4, 1, 32, 32) and samples.abs().max() <= 1

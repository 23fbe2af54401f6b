"""A short real training run: the VAE learns MNIST (validation negative ELBO drops far below its start)."""

from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
from builders import build
from torchvision.datasets import MNIST
from trainers import bare_trainer

from genlab.config.spec import DataSpec
from genlab.data import TensorBatches
from genlab.models.vae import VAE


def to_unit(images):
    return images.float().div(255).unsqueeze(1)


# the default conv net is ~10x slower per step on CPU than the mlp, so its run is in the slow set
NETS = {
    "mlp": {"net": "mlp", "hidden": 256, "latent_dim": 16, "batch_size": 128, "steps": 400},
    "conv": {"net": "conv", "channels": 16, "latent_dim": 16, "batch_size": 64, "steps": 300},
}


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("net", ["mlp", pytest.param("conv", marks=pytest.mark.slow)])
def test_short_mnist_run_lowers_validation_neg_elbo(real_data_dir, net):
    setup = dict(NETS[net])
    batch_size, steps = setup.pop("batch_size"), setup.pop("steps")
    train = MNIST(real_data_dir, train=True, download=True).data[:20_000]
    val = MNIST(real_data_dir, train=False, download=True).data[:1_000]
    pl.seed_everything(0)
    model = build(
        VAE,
        DataSpec((1, 28, 28), (0.0, 1.0), 10, "mnist"),
        {"name": "adam", "lr": 2e-3, "betas": [0.9, 0.999]},
        iw_samples=10,
        iw_examples=200,
        **setup,
    )
    trainer = bare_trainer(steps, num_sanity_val_steps=0)
    val_batches = TensorBatches(val, None, 500, transform=to_unit, shuffle=False, drop_last=False)
    before = trainer.validate(model, val_batches, verbose=False)[0]
    # an untrained decoder says p = 1/2 for every pixel: 784 * log 2 = 543 nats per image
    assert abs(before["val/recon"] - 784 * math.log(2)) < 20
    trainer.fit(model, TensorBatches(train, None, batch_size, transform=to_unit, seed=0))
    after = trainer.validate(model, val_batches, verbose=False)[0]
    assert after["val/neg_elbo"] < 200 and after["val/neg_elbo"] < 0.4 * before["val/neg_elbo"]
    assert after["val/iw_nll"] <= after["val/neg_elbo"] + 1.0  # the k=10 bound is at least as tight
    assert after["val/kl"] > 1.0 and after["val/active_units"] >= 2  # the latent code is used

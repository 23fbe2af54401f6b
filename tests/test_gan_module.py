"""The GAN LightningModule: config contract, training-step semantics and every stability switch."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from builders import build
from omegaconf import OmegaConf
from trainers import bare_trainer

from genlab.config.spec import DataSpec
from genlab.data.loader import TensorBatches
from genlab.models.gan import GAN, GANConfig
from genlab.models.gan.module import pack_samples
from genlab.run.callbacks.lifecycle import DivergenceGuard
from genlab.utils.errors import ConfigError, TrainingDiverged

REPO = Path(__file__).resolve().parents[1]
IMAGES = DataSpec((1, 32, 32), (-1.0, 1.0), name="tiny")
POINTS = DataSpec((2,), None, name="points")
TINY = dict(latent_dim=8, g_width=4, d_width=4)
TINY_MLP = dict(net="mlp", latent_dim=4, g_hidden=[16], d_hidden=[16])


class CountingBatches:
    """Wraps a batch iterable and counts the batches handed out."""

    def __init__(self, batches: TensorBatches) -> None:
        self.batches, self.served = batches, 0

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator:
        for batch in self.batches:
            self.served += 1
            yield batch


def batches(spec: DataSpec, n: int = 64, batch_size: int = 16, fill: float | None = None) -> TensorBatches:
    g = torch.Generator().manual_seed(0)
    x = (
        torch.rand(n, *spec.shape, generator=g) * 2 - 1
        if fill is None
        else torch.full((n, *spec.shape), fill)
    )
    return TensorBatches(x, None, batch_size=batch_size)


def fit(model: GAN, data, steps: int, **trainer_kwargs) -> pl.Trainer:
    trainer = bare_trainer(steps, **{"limit_val_batches": 0, "log_every_n_steps": 1, **trainer_kwargs})
    trainer.fit(model, data)
    return trainer


def adam_steps(optimizer: torch.optim.Optimizer) -> int:
    return int(next(iter(optimizer.state.values()))["step"])


# ---- config ------------------------------------------------------------------------------------
def test_yaml_lists_every_config_field_with_its_default():
    yaml = OmegaConf.to_container(OmegaConf.load(REPO / "configs/model/gan.yaml"))
    assert yaml.pop("family") == "gan"
    defaults = GANConfig()
    assert set(yaml) == {f.name for f in fields(GANConfig)}
    assert all(yaml[k] == getattr(defaults, k) for k in yaml)
    # the validator's check: a structured merge accepts the yaml as is
    OmegaConf.merge(OmegaConf.structured(GANConfig), yaml)


@pytest.mark.parametrize(
    "bad,words",
    [
        (dict(loss="lsgan"), "allowed: ns, hinge, wgan"),
        (dict(net="vit"), "allowed: dcgan, resnet, mlp"),
        (dict(n_critic=0), "model.n_critic"),
        (dict(ema_decay=1.0), "model.ema_decay"),
        (dict(diffaugment="translation,blur"), "allowed: translation, cutout, color"),
        (dict(pack=0), "model.pack"),
        (dict(lr_d=0.0), "model.lr_d"),
        (dict(gp_lambda=-1.0), "model.gp_lambda"),
        (dict(grad_clip=-1.0), "model.grad_clip"),
        (dict(g_hidden=[]), "model.g_hidden"),
    ],
)
def test_bad_values_raise_one_line_config_errors(bad, words):
    with pytest.raises(ConfigError, match=words) as err:
        GANConfig(**bad)
    assert "\n" not in str(err.value)


def test_gradient_penalty_weight_defaults_to_ten_for_wgan_only():
    assert GANConfig(loss="wgan").gradient_penalty == 10.0
    assert GANConfig(loss="ns").gradient_penalty == 0.0
    assert GANConfig(loss="ns", gp_lambda=1.0).gradient_penalty == 1.0
    assert GANConfig(loss="wgan", gp_lambda=0.0).gradient_penalty == 0.0


def test_config_time_contract_reads_the_typed_config():
    cfg = GANConfig(net="resnet")
    assert GAN.supported_image_sizes(cfg) == (32, 64)
    assert GAN.expected_value_range(cfg) == (-1.0, 1.0)
    assert GAN.supports_images(cfg) and not GAN.supports_vectors(cfg)
    assert GAN.supported_image_sizes(GANConfig()) == (32, 64, 128)
    assert GAN.supports_vectors(GANConfig(net="mlp")) and not GAN.supports_images(GANConfig(net="mlp"))


@pytest.mark.parametrize(
    "config,spec,words",
    [
        (dict(net="dcgan"), DataSpec((1, 28, 28), (-1.0, 1.0)), "dataset.image_size=28"),
        (dict(net="resnet"), DataSpec((3, 128, 128), (-1.0, 1.0)), "sizes 32, 64"),
        (dict(net="dcgan"), DataSpec((1, 32, 32), (0.0, 1.0)), "expects"),
        (dict(net="dcgan"), POINTS, "model.net=mlp"),
        (dict(net="mlp"), IMAGES, "image network"),
        (dict(net="mlp", diffaugment="color"), POINTS, "model.diffaugment"),
    ],
)
def test_data_the_net_cannot_handle_is_a_config_error(config, spec, words):
    with pytest.raises(ConfigError, match=words):
        build(GAN, spec, **config)


# ---- pieces ----------------------------------------------------------------------------------------
def test_pacgan_packs_consecutive_samples_along_channels():
    x = torch.arange(5 * 2 * 3 * 3, dtype=torch.float).view(5, 2, 3, 3)
    packed = pack_samples(x, 2)
    assert packed.shape == (2, 4, 3, 3)  # the odd fifth sample is dropped
    torch.testing.assert_close(packed[1], torch.cat([x[2], x[3]]))
    torch.testing.assert_close(
        pack_samples(torch.eye(4), 2), torch.tensor([[1.0, 0, 0, 0, 0, 1, 0, 0], [0, 0, 1, 0, 0, 0, 0, 1]])
    )
    with pytest.raises(ConfigError, match="model.pack=4"):
        pack_samples(x[:3], 4)


def test_discriminator_sees_packed_inputs():
    model = build(GAN, IMAGES, pack=4, **TINY)
    assert model.discriminator.net[0].in_channels == 4
    assert model.discriminator_input(torch.zeros(16, 1, 32, 32)).shape == (4, 4, 32, 32)
    assert model.discriminator(model.discriminator_input(torch.zeros(16, 1, 32, 32))).shape == (4,)


def test_decode_uses_ema_generator_in_eval_mode_and_restores_the_mode():
    model = build(GAN, IMAGES, ema=True, **TINY)
    with torch.no_grad():
        for p in model.g_ema.module.parameters():
            p.add_(0.1)
    z = torch.randn(3, 8)
    model.train()
    out = model.decode(z)
    assert model.g_ema.module.training and model.generator.training
    with torch.no_grad():
        assert torch.equal(out, model.g_ema.module.eval()(z))
        assert not torch.allclose(out, model.generator.eval()(z))
    assert model.sample(5).shape == (5, 1, 32, 32)


def test_decode_without_ema_uses_the_trained_generator():
    model = build(GAN, POINTS, **TINY_MLP)
    z = torch.randn(3, 4)
    torch.testing.assert_close(model.decode(z), model.generator(z))


# ---- training-step semantics -------------------------------------------------------------------
def test_max_steps_counts_generator_updates_and_batches_whatever_n_critic():
    model = build(GAN, POINTS, n_critic=3, **TINY_MLP)
    data = CountingBatches(batches(POINTS, n=256))
    trainer = fit(model, data, steps=5)
    opt_g, opt_d = trainer.optimizers
    assert trainer.global_step == 5
    assert adam_steps(opt_g) == 5  # one G update per training step
    assert adam_steps(opt_d) == 15  # n_critic D updates per training step
    assert data.served == 5


def test_ttur_learning_rates_reach_the_optimizers():
    model = build(GAN, POINTS, lr_g=1e-4, lr_d=4e-4, **TINY_MLP)
    trainer = fit(model, batches(POINTS), steps=1)
    assert [o.param_groups[0]["lr"] for o in trainer.optimizers] == [1e-4, 4e-4]
    assert trainer.callback_metrics["train/lr_g"].item() == pytest.approx(1e-4)
    assert trainer.callback_metrics["train/lr_d"].item() == pytest.approx(4e-4)


def test_optimizer_group_and_schedule_over_max_steps():
    model = build(
        GAN,
        data=POINTS,
        optimizer=dict(name="adam", lr=1e-3, betas=[0.0, 0.9], scheduler="linear"),
        **TINY_MLP,
    )
    trainer = fit(model, batches(POINTS), steps=4)
    for opt in trainer.optimizers:
        assert opt.param_groups[0]["betas"] == (0.0, 0.9)
        assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # linear decay to 0 at max_steps


def test_every_step_logs_the_diagnostics():
    model = build(GAN, IMAGES, loss="wgan", r1_gamma=1.0, **TINY)
    trainer = fit(model, batches(IMAGES, n=32), steps=2)
    keys = {k for k in trainer.callback_metrics if k.startswith("train/")}
    expected = {
        "loss_d",
        "loss_g",
        "d_real",
        "d_fake",
        "grad_norm_g",
        "grad_norm_d",
        "lr_g",
        "lr_d",
        "gp",
        "r1",
    }
    assert keys == {f"train/{k}" for k in expected}
    assert all(torch.isfinite(trainer.callback_metrics[k]) for k in keys)


def test_penalties_are_added_with_their_weights():
    torch.manual_seed(0)
    model = build(GAN, POINTS, loss="hinge", gp_lambda=2.0, r1_gamma=3.0, **TINY_MLP)
    real = torch.randn(8, 2)
    torch.manual_seed(1)
    out = model.discriminator_losses(real, with_penalties=True)
    torch.manual_seed(1)
    plain = model.discriminator_losses(real, with_penalties=False)
    expected = plain["loss_d"] + 2.0 * out["gp"] + 3.0 / 2 * out["r1"]
    torch.testing.assert_close(out["loss_d"], expected)
    assert "gp" not in plain and "r1" not in plain


def test_gradient_clipping_bounds_both_networks_gradient_norms():
    model = build(GAN, IMAGES, grad_clip=1e-3, **TINY)
    trainer = fit(model, batches(IMAGES, n=32), steps=2)
    for name, net in (("g", model.generator), ("d", model.discriminator)):
        norm = torch.nn.utils.get_total_norm([p.grad for p in net.parameters() if p.grad is not None])
        assert norm.item() <= 1e-3 * 1.001
        assert trainer.callback_metrics[f"train/grad_norm_{name}"].item() > 1e-2  # logged before clipping


def test_ema_generator_is_the_exponential_average_of_the_generator_after_each_step():
    class RecordGenerator(pl.Callback):
        def __init__(self):
            self.history = []

        def on_train_batch_end(self, trainer, module, *args):
            self.history.append([p.detach().clone() for p in module.generator.parameters()])

    decay = 0.9
    model = build(GAN, POINTS, ema=True, ema_decay=decay, **TINY_MLP)
    record = RecordGenerator()
    fit(model, batches(POINTS), steps=3, callbacks=[record])
    # the first update copies G; each later one moves the average (1 - decay) of the way towards G
    expected = record.history[0]
    for params in record.history[1:]:
        expected = [decay * e + (1 - decay) * p for e, p in zip(expected, params, strict=True)]
    for e, ema, g in zip(
        expected, model.g_ema.module.parameters(), model.generator.parameters(), strict=True
    ):
        torch.testing.assert_close(ema, e)
        assert not torch.allclose(ema, g)


def test_ema_and_fixed_noise_round_trip_through_a_checkpoint(tmp_path):
    model = build(GAN, IMAGES, ema=True, **TINY)
    trainer = fit(model, batches(IMAGES, n=32), steps=2)
    trainer.save_checkpoint(tmp_path / "gan.ckpt")
    loaded = GAN(model.config, IMAGES)
    loaded.load_state_dict(torch.load(tmp_path / "gan.ckpt", weights_only=True)["state_dict"])
    torch.testing.assert_close(loaded.fixed_z, model.fixed_z)
    for a, b in zip(loaded.g_ema.state_dict().values(), model.g_ema.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    z = model.fixed_latents()
    torch.testing.assert_close(loaded.decode(z), model.decode(z))


def test_a_non_finite_loss_stops_training_with_training_diverged():
    model = build(GAN, POINTS, **TINY_MLP)
    with pytest.raises(TrainingDiverged, match="loss_d became nan at step 1"):
        fit(model, batches(POINTS, fill=float("nan")), steps=3, callbacks=[DivergenceGuard()])


@pytest.mark.parametrize(
    "switches",
    [
        dict(loss="hinge", spectral_norm=True, n_critic=2),
        dict(loss="wgan", diffaugment="translation,cutout,color", pack=2, channels_last=True),
        dict(net="resnet", r1_gamma=1.0, ema=True, optimizer=dict(scheduler="cosine")),
    ],
)
def test_switch_combinations_train_on_images(switches):
    switches = dict(switches)
    model = build(GAN, IMAGES, optimizer=switches.pop("optimizer", None), **TINY, **switches)
    before = [p.detach().clone() for p in model.discriminator.parameters()]
    trainer = fit(model, batches(IMAGES, n=32), steps=2)
    assert trainer.global_step == 2
    assert torch.isfinite(trainer.callback_metrics["train/loss_d"])
    assert any(not torch.equal(b, p) for b, p in zip(before, model.discriminator.parameters(), strict=True))
    assert model.sample(4).shape == (4, 1, 32, 32)


def test_validation_logs_the_losses_and_leaves_sample_quality_to_the_eval_callback():
    class RingData(pl.LightningDataModule):
        modes = torch.tensor([[2.0, 0.0], [-2.0, 0.0]])
        mode_std = 0.05

        def train_dataloader(self):
            return batches(POINTS)

        def val_dataloader(self):
            return batches(POINTS, batch_size=32)

    model = build(GAN, POINTS, **TINY_MLP)
    trainer = bare_trainer(2, num_sanity_val_steps=0, val_check_interval=2)
    trainer.fit(model, datamodule=RingData())
    metrics = set(trainer.callback_metrics)
    assert {"val/loss_d", "val/loss_g", "val/d_real", "val/d_fake"} <= metrics
    assert not metrics & {"val/modes_covered", "val/hq_fraction"}  # the module does not evaluate itself

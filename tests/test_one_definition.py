"""Ideas with one definition that every user reads: genlab's resolvers, the default value range, the
batch-divisibility rule and the GAN's G/D learning rates."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from builders import build
from omegaconf import OmegaConf

from genlab.checkpoint import resolve_data_spec
from genlab.commands.compose import compose_config
from genlab.commands.help import register_resolvers
from genlab.config.spec import DataSpec
from genlab.data.datamodule import DEFAULT_VALUE_RANGE, ToValueRange, per_process_batch
from genlab.data.synthetic import ShapesDataModule
from genlab.health.advice import advice
from genlab.health.detectors import fmt
from genlab.models.gan import GAN, GANConfig
from genlab.models.optim import OptimizerConfig
from genlab.run.config import resolve_run
from genlab.utils.errors import ConfigError


def test_one_call_registers_every_genlab_resolver():
    register_resolvers()
    assert OmegaConf.has_resolver("genlab_keys") and OmegaConf.has_resolver("genlab_job_label")


class NoPreference:
    """A model with no preferred value range or image size."""

    @classmethod
    def expected_value_range(cls, config):
        return None

    @classmethod
    def supported_image_sizes(cls, config):
        return None

    @classmethod
    def check_data(cls, config, spec):
        pass


def test_one_default_value_range():
    alone = build(ShapesDataModule, image_size=16).spec  # no model to ask
    resolved = resolve_data_spec(
        ShapesDataModule, ShapesDataModule.config_class(image_size=16), NoPreference, None
    )
    assert alone.value_range == resolved.value_range == DEFAULT_VALUE_RANGE == (0.0, 1.0)
    pixels = torch.tensor([0, 255], dtype=torch.uint8)
    assert ToValueRange(None)(pixels).tolist() == list(DEFAULT_VALUE_RANGE)


def test_run_check_and_datamodule_refuse_an_uneven_batch_with_one_message(tmp_path):
    with pytest.raises(ConfigError) as direct:
        per_process_batch(100, 3)
    cfg = compose_config(
        "train",
        ["model=gan", "model.net=mlp", "dataset=ring", "trainer.devices=3", "dataset.batch_size=100"],
        run_dir=tmp_path,
    )
    with pytest.raises(ConfigError) as run:
        resolve_run(cfg)
    assert str(run.value) == str(direct.value)
    assert "over the 3 processes" in str(direct.value) and "dataset.batch_size=102" in str(direct.value)
    assert per_process_batch(102, 3) == 34


@pytest.mark.parametrize(
    ("keys", "expected"), [({}, (1e-3, 1e-3)), ({"lr_g": 1e-4, "lr_d": 4e-4}, (1e-4, 4e-4))]
)
def test_gan_learning_rates_resolved_once_for_every_user(keys, expected):
    optimizer = OptimizerConfig(lr=1e-3)
    config = GANConfig(net="mlp", **keys)
    assert config.learning_rates(optimizer) == expected
    # the optimizers the module builds, the settings a resume compares, and the health advice all agree
    gan = GAN(config, DataSpec((2,), None), optimizer)
    gan.trainer = SimpleNamespace(max_steps=10)
    assert [o.param_groups[0]["lr"] for o in gan.configure_optimizers()] == list(expected)
    assert [s["lr"] for s in GAN.optimizer_settings(config, optimizer)] == list(expected)
    _, lr_d = expected
    assert f"(now {fmt(lr_d)})" in advice("d_wins", "gan", config, optimizer)

"""The resolved run: names only through registries, each typed config built once, every preset trains,
and the wiring of the GAN's switches (what would silently break without these tests)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from builders import build
from runs_util import run_cli, run_train

from genlab.cli import CONFIG_DIR, main
from genlab.config.spec import DataSpec
from genlab.models.gan import GAN
from genlab.models.gan import diffaugment as da
from genlab.models.gan import module as gan_module
from genlab.models.gan.losses import (
    hinge_d_loss,
    hinge_g_loss,
    ns_d_loss,
    ns_g_loss,
    wgan_d_loss,
    wgan_g_loss,
)

PACKAGE = Path(__file__).resolve().parents[1] / "genlab"
IMAGES = DataSpec((1, 32, 32), (-1.0, 1.0), name="tiny")
TINY = dict(latent_dim=8, g_width=4, d_width=4)


def test_no_name_from_a_file_is_ever_imported_or_instantiated():
    """genlab maps names through its registries: it has no call that turns a string into code."""
    dynamic = re.compile(
        r"\b(get_class|get_method|instantiate|import_module|_locate|locate)\(|(?<![.\w])(__import__|eval|exec)\("
    )
    offenders = [
        f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
        for path in PACKAGE.rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if dynamic.search(line) and not line.lstrip().startswith("#")
    ]
    assert offenders == []


def test_each_typed_config_is_built_once_per_train(tmp_path, monkeypatch):
    from genlab.data.synthetic import GaussianMixtureConfig
    from genlab.models.gan import GANConfig
    from genlab.models.optim import OptimizerConfig
    from genlab.run.callbacks.checkpoint import CheckpointConfig
    from genlab.run.callbacks.images import ImageGridsConfig
    from genlab.run.callbacks.progress import ProgressConfig
    from genlab.run.loggers import TensorBoardConfig
    from genlab.run.sections import PathsConfig, RunSettings, TrainerConfig

    counted = (
        GANConfig,
        GaussianMixtureConfig,
        OptimizerConfig,
        TrainerConfig,
        PathsConfig,
        RunSettings,
        CheckpointConfig,
        ImageGridsConfig,
        ProgressConfig,
        TensorBoardConfig,
    )
    calls = dict.fromkeys(counted, 0)
    for cls in counted:
        original = cls.__post_init__

        def counting(self, _original=original, _cls=cls):
            if type(self) is _cls:
                calls[_cls] += 1
            _original(self)

        monkeypatch.setattr(cls, "__post_init__", counting)
    run_train(
        tmp_path / "run",
        "dataset=ring",
        "model.net=mlp",
        "model.g_hidden=[8]",
        "model.d_hidden=[8]",
        "model.latent_dim=2",
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
        "trainer.limit_val_batches=1",
        "threads=1",
    )
    assert {cls.__name__: n for cls, n in calls.items()} == {cls.__name__: 1 for cls in counted}


@pytest.mark.parametrize(
    ("command", "args", "key"),
    [
        ("train", ["hydra.run.dir={tmp}/run", "model.latent_dim=${nosuch}"], "model.latent_dim"),
        ("sample", ["ckpt=x.ckpt", "n=${nosuch}"], "n"),
        ("eval", ["ckpt=x.ckpt", "eval.seed=${nosuch}"], "eval.seed"),
    ],
)
def test_every_command_turns_its_hydra_config_into_typed_configs_the_same_way(
    command, args, key, tmp_path, capsys
):
    """One conversion (genlab.config.schema.plain_config): an unresolvable value is the same one line."""
    code, _, err = run_cli(capsys, command, *(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert code == 2, err
    assert err.strip() == f"genlab {command}: error: {key}: Interpolation key 'nosuch' not found"
    assert list(tmp_path.iterdir()) == []  # train: no run directory


PRESET_DATA = {  # keep each preset's recipe but shrink the data so two steps take seconds
    "quickstart": ["dataset.n_train=128", "dataset.n_test=64"],
    "ring_gan": ["dataset.n_train=2048", "dataset.n_test=512"],
    "ring_best": ["dataset.n_train=2048", "dataset.n_test=512"],
    "grid_gan": ["dataset.n_train=2048", "dataset.n_test=512"],
    "grid_best": ["dataset.n_train=2048", "dataset.n_test=512"],
    "mnist_vae": ["model.iw_examples=8", "model.iw_samples=2"],
    "mnist_cvae": ["model.iw_examples=8", "model.iw_samples=2"],
}


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml")))
def test_every_experiment_preset_trains_two_steps(name, tmp_path, real_data_dir):
    run_train(
        tmp_path / "run",
        f"experiment={name}",
        f"paths.data_dir={real_data_dir}",
        *PRESET_DATA.get(name, []),
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
        "trainer.limit_val_batches=1",
        "callbacks.model_checkpoint.every_n_train_steps=2",
        "threads=1",
    )
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


def test_train_help_lists_every_group_with_its_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "model: classifier, gan, vae" in out
    assert "dataset: celeba, cifar10, fashion_mnist, folder, grid, mnist, ring, shapes, stacked_mnist" in out
    assert (
        "experiment: grid_best, grid_gan, health_d_wins, health_gan_exploding, health_mode_collapse, "
        "health_vae_collapse, health_vae_exploding, mnist_cgan, mnist_classifier, mnist_cvae, mnist_gan, "
        "mnist_vae, quickstart, ring_best, ring_gan, stacked_mnist_dcgan, stacked_mnist_pac2" in out
    )


# ---- GAN wiring ---------------------------------------------------------------------------------
def test_diffaugment_reaches_every_discriminator_input(monkeypatch):
    """Real and fake batches both reach D augmented (a marker transform stands in for the policy)."""
    model = build(GAN, IMAGES, diffaugment="translation", **TINY)
    monkeypatch.setattr(gan_module, "diff_augment", lambda x, policy: torch.full_like(x, 1000.0))
    seen = []
    model.discriminator.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    real = torch.rand(8, 1, 32, 32) * 2 - 1
    model.discriminator_losses(real, with_penalties=False)
    model.generator_loss(8)
    assert len(seen) == 3  # real, fake (D step), fake (G step)
    assert all(bool((x == 1000.0).all()) for x in seen)


def test_without_diffaugment_discriminator_sees_the_data_itself(monkeypatch):
    model = build(GAN, IMAGES, **TINY)
    monkeypatch.setattr(gan_module, "diff_augment", lambda x, policy: torch.full_like(x, 1000.0))
    seen = []
    model.discriminator.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    real = torch.rand(8, 1, 32, 32) * 2 - 1
    model.discriminator_losses(real, with_penalties=False)
    torch.testing.assert_close(seen[0], real)


@pytest.mark.parametrize(
    ("loss", "d_fn", "g_fn"),
    [("ns", ns_d_loss, ns_g_loss), ("hinge", hinge_d_loss, hinge_g_loss), ("wgan", wgan_d_loss, wgan_g_loss)],
)
def test_each_loss_pairs_its_own_discriminator_and_generator_objective(loss, d_fn, g_fn):
    model = build(GAN, IMAGES, loss=loss, **TINY)
    real, fake = torch.randn(16), torch.randn(16) - 1
    expected_d = {
        "ns": torch.nn.functional.softplus(-real).mean() + torch.nn.functional.softplus(fake).mean(),
        "hinge": torch.relu(1 - real).mean() + torch.relu(1 + fake).mean(),
        "wgan": fake.mean() - real.mean(),
    }[loss]
    expected_g = {
        "ns": torch.nn.functional.softplus(-fake).mean(),
        "hinge": -fake.mean(),
        "wgan": -fake.mean(),
    }[loss]
    torch.testing.assert_close(model.d_loss_fn(real, fake), expected_d)
    torch.testing.assert_close(model.g_loss_fn(fake), expected_g)
    assert (model.d_loss_fn, model.g_loss_fn) == (d_fn, g_fn)


def test_color_draws_its_parameters_per_sample():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 8, 8).expand(16, -1, -1, -1).contiguous()
    out = da.color(x)
    per_sample = out.flatten(1)
    assert not torch.allclose(per_sample[0], per_sample[1])
    assert len({round(v, 5) for v in (out - x).mean((1, 2, 3)).tolist()}) == 16

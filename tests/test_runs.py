"""End-to-end runs through the CLI: run dir layout, checkpoints, TensorBoard content, sampling."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from runs_util import RING_GAN, SHAPES_GAN, SHAPES_VAE, run_train, short, tensorboard

from genlab.cli import main


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ring") / "run"
    run_train(run_dir, *RING_GAN, *short(40, 20), "callbacks=eval", "callbacks.eval_metrics.metrics=[modes]")
    return run_dir


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("shapes") / "run"
    run_train(run_dir, *SHAPES_GAN, *short(6, 3))
    return run_dir


def test_run_dir_layout(ring_run):
    assert (ring_run / ".hydra" / "config.yaml").is_file()
    assert (ring_run / "checkpoints" / "last.ckpt").is_file()
    assert list((ring_run / "tensorboard").glob("events.out.tfevents.*"))
    metrics = json.loads((ring_run / "metrics.json").read_text())
    assert metrics["global_step"] == 40
    assert np.isfinite(metrics["train/loss_d"])


def test_checkpoint_carries_a_plain_run_record(ring_run):
    ckpt = torch.load(ring_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    record = ckpt["genlab"]
    assert record["family"] == "gan" and record["dataset"] == "ring"  # registry names, not import paths
    assert record["config"]["model"]["net"] == "mlp" and record["data_spec"]["shape"] == [2]
    assert type(record["config"]["optimizer"]) is dict
    assert set(record["versions"]) == {"genlab", "torch", "lightning"}
    assert "hyper_parameters" not in ckpt  # the run record is the one source of the model's config
    assert ckpt["global_step"] == 40


def test_periodic_checkpoints_are_kept(ring_run):
    names = sorted(p.name for p in (ring_run / "checkpoints").glob("step*.ckpt"))
    assert names == ["step0000020.ckpt", "step0000040.ckpt"]


def test_tensorboard_scalars_and_scatter_image(ring_run):
    acc = tensorboard(ring_run)
    tags = acc.Tags()
    for tag in ("train/loss_d", "train/loss_g", "train/grad_norm_g", "val/modes_covered"):
        assert tag in tags["scalars"], tags["scalars"]
    steps = [e.step for e in acc.Scalars("train/loss_d")]
    assert steps == sorted(set(steps)) and steps[-1] >= 30
    img = acc.Images("images/scatter")[-1]
    pic = Image.open(io.BytesIO(img.encoded_image_string))
    assert pic.size[0] > 100 and np.asarray(pic).std() > 10  # a real plot, not a blank image


def test_tensorboard_image_grids_and_png(shapes_run):
    acc = tensorboard(shapes_run)
    for tag in ("images/samples", "images/interpolation"):
        ev = acc.Images(tag)[-1]
        pic = np.asarray(Image.open(io.BytesIO(ev.encoded_image_string)))
        assert pic.shape[0] > 32 and pic.shape[1] > 32
    assert sorted((shapes_run / "samples").glob("samples_step*.png"))


def test_hparams_recorded_for_the_hparams_tab(shapes_run):
    acc = tensorboard(shapes_run)
    plugins = acc.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in plugins
    content = plugins["_hparams_/session_start_info"]
    assert b"model.latent_dim" in content and b"optimizer.lr" in content


def test_csv_logger_runs_every_callback(tmp_path):
    run_train(tmp_path / "run", *SHAPES_GAN, *short(4, 2), "logger=csv")
    text = (tmp_path / "run" / "csv" / "metrics.csv").read_text()
    assert "train/loss_d" in text.splitlines()[0]
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


def test_vae_run_logs_its_panels(tmp_path):
    run_train(tmp_path / "run", *SHAPES_VAE, *short(6, 3))
    acc = tensorboard(tmp_path / "run")
    for tag in ("images/reconstructions", "images/samples", "images/traversal", "images/interpolation"):
        assert tag in acc.Tags()["images"], acc.Tags()["images"]
    assert "val/neg_elbo" in acc.Tags()["scalars"]


# ---- genlab sample -------------------------------------------------------------------------------
def sample(capsys, *args):
    try:
        code = main(["sample", *args]) or 0
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def test_sample_png_and_npy_repeatable(shapes_run, tmp_path, capsys):
    ckpt = shapes_run / "checkpoints" / "last.ckpt"
    assert sample(capsys, f"ckpt={ckpt}", "n=16", f"out={tmp_path}/a.npy", "seed=3")[0] == 0
    assert sample(capsys, f"ckpt={ckpt}", "n=16", f"out={tmp_path}/b.npy", "seed=3")[0] == 0
    assert sample(capsys, f"ckpt={ckpt}", "n=16", f"out={tmp_path}/c.npy", "seed=4")[0] == 0
    a, b, c = (np.load(tmp_path / f"{k}.npy") for k in "abc")
    assert a.shape == (16, 1, 32, 32) and a.min() >= 0 and a.max() <= 1
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert sample(capsys, f"ckpt={ckpt}", "n=16", f"out={tmp_path}/g.png")[0] == 0
    assert Image.open(tmp_path / "g.png").size[0] > 32 * 3


def test_sample_2d_points(ring_run, tmp_path, capsys):
    code, err = sample(capsys, f"ckpt={ring_run}/checkpoints/last.ckpt", "n=100", f"out={tmp_path}/p.npy")
    assert code == 0, err
    assert np.load(tmp_path / "p.npy").shape == (100, 2)


def test_sample_vae_modes(tmp_path, capsys):
    run_train(tmp_path / "run", *SHAPES_VAE, *short(4, 2))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    for mode in ("prior", "reconstruct", "interpolate"):
        code, err = sample(capsys, f"ckpt={ckpt}", "n=20", f"out={tmp_path}/{mode}.npy", f"mode={mode}")
        assert code == 0, err
    assert np.load(tmp_path / "reconstruct.npy").shape[0] == 40  # input/reconstruction pairs
    assert np.load(tmp_path / "interpolate.npy").shape[0] == 20


@pytest.mark.parametrize("kind", ["missing", "truncated", "foreign"])
def test_sample_bad_checkpoint_is_one_line(shapes_run, tmp_path, capsys, kind):
    bad = tmp_path / "bad.ckpt"
    if kind == "truncated":
        data = (shapes_run / "checkpoints" / "last.ckpt").read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif kind == "foreign":
        torch.save({"weights": torch.zeros(3)}, bad)
    code, err = sample(capsys, f"ckpt={bad}", f"out={tmp_path}/x.png")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "genlab sample: error:" in err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    ("arg", "needle"),
    [
        ("device=gpu", "device='gpu' is not known"),
        ("n=abc", "n='abc' has the wrong type"),
        ("out=x.jpg", "must end in .png"),
    ],
)
def test_sample_bad_arguments_are_one_line(shapes_run, tmp_path, capsys, arg, needle):
    code, err = sample(capsys, f"ckpt={shapes_run}/checkpoints/last.ckpt", f"out={tmp_path}/x.png", arg)
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err

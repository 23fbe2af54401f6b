"""The genlab command line: subcommands, Hydra features through `genlab train`, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from runs_util import run_cli
from subprocess_util import genlab_env

from genlab.cli import main

GENLAB = [sys.executable, "-m", "genlab"]


def test_top_level_help_lists_subcommands(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for cmd in ("train", "sample", "eval"):
        assert f"  {cmd} " in out


def test_version(capsys):
    from genlab import __version__

    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"genlab {__version__}"


def test_train_help_shows_config_groups(capsys):
    code, out, _ = run_cli(capsys, "train", "--help")
    assert code == 0
    for group in ("dataset:", "model:", "optimizer:", "trainer:", "logger:", "callbacks:"):
        assert group in out
    assert "genlab train" in out


def test_cfg_job_prints_composed_config_with_family_defaults(capsys):
    code, out, _ = run_cli(capsys, "train", "--cfg", "job", "model=vae")
    assert code == 0
    assert "family: vae" in out
    assert "lr: 0.001" in out  # the VAE family's default optimizer, not the GAN's 2e-4


def test_cfg_job_append_and_delete_keys(capsys):
    code, out, _ = run_cli(capsys, "train", "--cfg", "job", "+extra.note=hello", "~logger")
    assert code == 0
    assert "note: hello" in out
    assert "TensorBoardLogger" not in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["model=nosuch"], "model=nosuch is not a known option; allowed:"),
        (["dataset=nosuch"], "dataset=nosuch is not a known option"),
        (["model.nosuch_key=1"], "model.nosuch_key is not a known key"),
        (["+model.nosuch_key=1"], "model.nosuch_key is not a known key of model"),
        (["optimizer.lr=abc"], "optimizer.lr='abc' has the wrong type"),
        (["optimizer.lr=-0.1"], "optimizer.lr=-0.1 must be a finite number > 0"),
        (["optimizer.lr=0"], "optimizer.lr=0.0 must be a finite number > 0"),
        (["dataset.batch_size=0"], "dataset.batch_size"),
        (["dataset.batch_size=-8"], "dataset.batch_size"),
        (
            ["dataset=mnist", "dataset.download=false", "paths.data_dir=/nonexistent/genlab-data"],
            "paths.data_dir='/nonexistent/genlab-data' does not exist",
        ),
        (["dataset.image_size=48"], "dataset.image_size=48"),
        (["seed=["], "cannot parse override"),
        (["optimizer=sgd", "optimizer.momentum=-1"], "optimizer.momentum=-1.0 must be a finite number >= 0"),
        (["dataset=ring", "model.net=mlp", "dataset.n_train=10"], "larger than the training split"),
        (["model=classifier", "dataset=ring"], "model=classifier needs an image dataset"),
        pytest.param(
            ["trainer=gpu"],
            "trainer.accelerator=gpu but no CUDA GPU is available",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without GPU"),
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, tmp_path, args, needle):
    code, out, err = run_cli(capsys, "train", f"hydra.run.dir={tmp_path}/run", *args)
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("genlab train: error: ")
    assert needle in lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_debug_flag_shows_the_traceback(capsys, tmp_path):
    with pytest.raises(Exception) as info:
        main(["train", "--debug", f"hydra.run.dir={tmp_path}", "optimizer.lr=-1"])
    assert "optimizer.lr=-1" in str(info.value)


def test_unknown_subcommand(capsys):
    code, _, err = run_cli(capsys, "trian")
    assert code == 2 and "unknown command 'trian'" in err


def test_resume_of_a_non_run_dir_is_one_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", f"resume={tmp_path}")
    assert code == 2 and "is not a genlab run directory" in err


@pytest.mark.slow  # end-to-end in fresh processes; the fast tier covers the same code in-process
def test_cli_works_from_outside_the_repo(tmp_path):
    """--help and --cfg job from a directory that is not the repo root (configs ship with the package)."""
    env = genlab_env()
    res = subprocess.run(
        [*GENLAB, "train", "--cfg", "job", "model=vae"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert "family: vae" in res.stdout
    res = subprocess.run([*GENLAB, "train", "--help"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert res.returncode == 0 and "Config groups" in res.stdout


def test_resume_from_a_foreign_checkpoint_is_one_line(capsys, tmp_path):
    foreign = tmp_path / "other.ckpt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    code, _, err = run_cli(
        capsys,
        "train",
        f"hydra.run.dir={tmp_path}/run",
        f"ckpt_path={foreign}",
        "dataset=ring",
        "model.net=mlp",
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "is not a genlab checkpoint" in err

"""Files land where a user looks for them: samples in their run, examples under outputs/, nothing in the repo."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from runs_util import RING_GAN, SHAPES_GAN, run_cli, run_train, short

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    run_train(root / "shapes", *SHAPES_GAN, *short(2, 2), "threads=1")
    run_train(root / "ring", *RING_GAN, *short(2, 2), "threads=1")
    return {"shapes": root / "shapes", "ring": root / "ring"}


def test_samples_default_to_the_runs_samples_folder(runs, capsys):
    code, out, err = run_cli(
        capsys, "sample", f"ckpt={runs['shapes']}/checkpoints/last.ckpt", "n=4", "seed=2"
    )
    assert code == 0, err
    grid = runs["shapes"] / "samples" / "last-prior-n4-seed2.png"
    assert Image.open(grid).size[0] > 32 and str(grid) in out
    code, _, err = run_cli(capsys, "sample", f"ckpt={runs['ring']}/checkpoints/last.ckpt", "n=5")
    assert code == 0, err
    assert np.load(runs["ring"] / "samples" / "last-prior-n5-seed0.npy").shape == (5, 2)  # 2D data: .npy


def test_eval_report_defaults_to_beside_the_checkpoint(runs, capsys):
    code, _, err = run_cli(capsys, "eval", f"ckpt={runs['ring']}/checkpoints/last.ckpt", "eval.n_samples=50")
    assert code == 0, err
    assert (runs["ring"] / "checkpoints" / "eval.json").is_file()


def test_documented_examples_write_under_outputs():
    """Every `out=` of a README or --help example is under outputs/ (git-ignored), never the repo root."""
    texts = [REPO / "README.md", *sorted((REPO / "configs" / "hydra" / "help").glob("*.yaml"))]
    outs = [(p.name, m) for p in texts for m in re.findall(r"\bout=([^\s`]+)", p.read_text())]
    assert outs, "no out= examples found"
    bad = [(name, value) for name, value in outs if not value.startswith(("outputs/", "<", "{"))]
    assert not bad, bad


def test_default_data_dir_follows_the_environment(monkeypatch, tmp_path):
    from genlab.data.synthetic import ShapesConfig

    monkeypatch.setenv("GENLAB_DATA_DIR", str(tmp_path))
    assert ShapesConfig().data_dir == str(tmp_path)  # tests (conftest) keep dataset caches out of the repo

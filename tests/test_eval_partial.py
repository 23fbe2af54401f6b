"""`genlab eval` offline: every metric it can, one line per skipped group of metrics, progress per metric."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runs_util import RING_GAN, SHAPES_GAN, SHAPES_VAE, run_cli, run_train, short

from genlab.metrics.features import INCEPTION_ENV, INCEPTION_FILE, inception_search_path
from genlab.utils import progress as phases


@pytest.fixture
def no_inception(tmp_path, monkeypatch) -> Path:
    """No Inception weights anywhere genlab looks: an empty torch hub cache, the env var unset."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    monkeypatch.delenv(INCEPTION_ENV, raising=False)
    return tmp_path / "empty_torch_home"


@pytest.fixture
def chatty(monkeypatch):
    """A progress line at every update (the real cadence: first after 5 s, then at least every 30 s)."""
    monkeypatch.setattr(phases, "FIRST_PROGRESS", 0.0)
    monkeypatch.setattr(phases, "PROGRESS_EVERY", 0.0)


def trained(tmp_path_factory, name: str, *overrides: str) -> str:
    run = tmp_path_factory.mktemp(name)
    run_train(run, *overrides, *short(4, 2), "threads=1")
    return str(run / "checkpoints" / "last.ckpt")


@pytest.fixture(scope="module")
def vae_ckpt(tmp_path_factory) -> str:
    return trained(tmp_path_factory, "vae", *SHAPES_VAE)


@pytest.fixture(scope="module")
def ring_ckpt(tmp_path_factory) -> str:
    return trained(tmp_path_factory, "ring", *RING_GAN)


@pytest.fixture(scope="module")
def shapes_gan_ckpt(tmp_path_factory) -> str:
    return trained(tmp_path_factory, "shapes_gan", *SHAPES_GAN)


def skipped_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if "eval: skipped" in line]


def test_vae_offline_computes_the_likelihoods_and_names_what_it_skipped(
    vae_ckpt, no_inception, chatty, tmp_path, capsys
):
    out_file = tmp_path / "report.json"
    code, out, err = run_cli(
        capsys,
        "eval",
        f"ckpt={vae_ckpt}",
        f"out={out_file}",
        "eval.n_samples=64",
        "eval.iw_samples=3",
        "eval.batch_size=16",
    )
    assert code == 0, err
    report = json.loads(out_file.read_text())
    assert {"neg_elbo", "iw_nll", "active_units"} <= set(report["metrics"])
    assert report["metrics"]["neg_elbo"] > 0
    assert set(report["skipped"]) == {"fid", "kid", "prdc", "is"}
    # one line for the four Inception metrics, naming every place searched (from the searching code itself)
    (line,) = skipped_lines(out + err)
    assert "skipped fid, kid, prdc, is: Inception weights not found (searched: " in line
    assert "eval.inception_weights (not set)" in line
    assert f"${INCEPTION_ENV} (not set)" in line
    assert str(no_inception / "hub" / "checkpoints" / INCEPTION_FILE) in line
    for where, _ in inception_search_path():
        assert where in line
    # the table shows the likelihoods; each step says when it starts and ends, the long loop how far it is
    assert "iw_nll" in out and "neg_elbo" in out
    assert "eval: likelihood (neg_elbo, iw_nll with k=3) ... (64 images)" in out
    assert "eval: likelihood (neg_elbo, iw_nll with k=3) done in " in out
    progress = [ln for ln in out.splitlines() if "images/s" in ln]
    assert [ln.split(": ")[-1].split(" images")[0] for ln in progress] == ["16/64", "32/64", "48/64", "64/64"]
    assert "about" in progress[0] and "left" in progress[0] and "(25%)" in progress[0]
    assert report["n_samples"] == 0 and report["n_reference"] == 64  # nothing generated for likelihoods


def test_explicit_metric_list_is_computed_as_far_as_possible(vae_ckpt, no_inception, tmp_path, capsys):
    out_file = tmp_path / "r.json"
    code, out, err = run_cli(
        capsys,
        "eval",
        f"ckpt={vae_ckpt}",
        f"out={out_file}",
        "eval.metrics=[fid,likelihood]",
        "eval.n_samples=16",
        "eval.iw_samples=2",
    )
    assert code == 0, err
    assert set(json.loads(out_file.read_text())["skipped"]) == {"fid"}
    assert len(skipped_lines(out + err)) == 1


def test_gan_on_ring_needs_no_features_and_reports_its_modes(ring_ckpt, no_inception, tmp_path, capsys):
    out_file = tmp_path / "ring.json"
    code, out, err = run_cli(capsys, "eval", f"ckpt={ring_ckpt}", f"out={out_file}", "eval.n_samples=200")
    assert code == 0, err
    report = json.loads(out_file.read_text())
    assert report["metrics"]["num_modes"] == 8 and "modes_covered" in report["metrics"]
    assert report["skipped"] == {} and not skipped_lines(out + err)
    assert "eval: modes ..." in out and "eval: modes done in " in out
    assert "eval: generating samples ... (200 samples)" in out


def test_nothing_left_to_compute_is_one_error_line_with_the_places_searched(
    shapes_gan_ckpt, no_inception, capsys
):
    code, out, err = run_cli(capsys, "eval", f"ckpt={shapes_gan_ckpt}", "eval.n_samples=8")
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("genlab eval: error: Inception weights not found (searched: ")
    assert str(no_inception / "hub" / "checkpoints" / INCEPTION_FILE) in line
    assert "eval.inception_weights=<path>" in line and "eval.features=classifier" in line
    assert not (Path(shapes_gan_ckpt).parent / "eval.json").exists()


def test_weights_found_through_the_environment_variable(tmp_path, monkeypatch, no_inception):
    from genlab.metrics.features import inception_weights_path

    weights = tmp_path / INCEPTION_FILE
    weights.write_bytes(b"x")
    monkeypatch.setenv(INCEPTION_ENV, str(weights))
    assert inception_weights_path(None) == weights
    hub = no_inception / "hub" / "checkpoints" / INCEPTION_FILE
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"x")
    monkeypatch.delenv(INCEPTION_ENV)
    assert inception_weights_path(None) == hub


def test_sample_is_silent_when_quick_and_shows_progress_when_slow(ring_ckpt, tmp_path, capsys, monkeypatch):
    code, out, _ = run_cli(capsys, "sample", f"ckpt={ring_ckpt}", f"out={tmp_path / 'a.npy'}", "n=50")
    assert code == 0 and "samples/s" not in out
    monkeypatch.setattr(phases, "FIRST_PROGRESS", 0.0)
    code, out, _ = run_cli(capsys, "sample", f"ckpt={ring_ckpt}", f"out={tmp_path / 'b.npy'}", "n=50")
    assert code == 0
    assert "sample: sampling: 50/50 samples (100%)" in out and "sample: sampling done in " in out

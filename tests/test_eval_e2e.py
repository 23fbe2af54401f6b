"""`genlab eval` end to end on checkpoints written by `genlab train` (tiny runs on the offline datasets)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from builders import build
from inception_files import fidelity_state_dict
from runs_util import RING_GAN, SHAPES_GAN, SHAPES_VAE, run_train, short, tensorboard

from genlab.checkpoint import load_run
from genlab.cli import main
from genlab.metrics import suite
from genlab.metrics.features import INCEPTION_FILE
from genlab.metrics.modes import mode_stats
from genlab.utils import resources

SHAPES_CLASSIFIER = ["dataset=shapes", "model=classifier", "model.width=8", "dataset.batch_size=32"]


def run_eval(out, *overrides: str) -> dict:
    """`genlab eval` through the CLI; the report it wrote to ``out``."""
    main(["eval", *overrides, f"out={out}"])
    with open(out) as f:
        return json.load(f)


def trained(tmp_path_factory, name: str, *overrides: str, steps: int = 20) -> str:
    run = tmp_path_factory.mktemp(name)
    run_train(run, *overrides, *short(steps, steps // 2))
    return str(run / "checkpoints" / "last.ckpt")


@pytest.fixture(scope="module")
def ring_gan(tmp_path_factory) -> str:
    return trained(tmp_path_factory, "ring_gan", *RING_GAN)


@pytest.fixture(scope="module")
def shapes_gan(tmp_path_factory) -> str:
    return trained(tmp_path_factory, "shapes_gan", *SHAPES_GAN)


@pytest.fixture(scope="module")
def shapes_classifier(tmp_path_factory) -> str:
    return trained(tmp_path_factory, "shapes_clf", *SHAPES_CLASSIFIER)


def test_ring_gan_reports_mode_coverage_beside_the_checkpoint(ring_gan):
    main(["eval", f"ckpt={ring_gan}"])
    with open(ring_gan.replace("last.ckpt", "eval.json")) as f:
        report = json.load(f)
    assert (report["n_samples"], report["split"], report["features"]) == (2500, "test", None)
    assert report["checkpoint"].endswith("last.ckpt")
    # the same 2500 samples, counted independently of the evaluation code path
    model = load_run(ring_gan).model
    samples = model.sample(2500, generator=torch.Generator().manual_seed(0))
    from genlab.data.synthetic import GaussianMixtureDataModule

    dm = build(GaussianMixtureDataModule, name="ring")
    expected = mode_stats(samples, dm.modes, dm.mode_std)
    assert report["metrics"]["modes_covered"] == expected["modes_covered"]
    assert report["metrics"]["hq_fraction"] == pytest.approx(expected["hq_fraction"])
    assert report["metrics"]["num_modes"] == 8


def test_vae_likelihoods_iw_bound_with_k1_equals_the_elbo(tmp_path_factory, tmp_path):
    ckpt = trained(tmp_path_factory, "shapes_vae", *SHAPES_VAE)
    base = [f"ckpt={ckpt}", "eval.metrics=[likelihood]", "eval.n_samples=400"]
    k1 = run_eval(tmp_path / "k1.json", *base, "eval.iw_samples=1")["metrics"]
    k50 = run_eval(tmp_path / "k50.json", *base, "eval.iw_samples=50")["metrics"]
    # k=1: a one-sample Monte Carlo estimate of the same negative ELBO (closed-form vs sampled KL)
    assert k1["iw_nll"] == pytest.approx(k1["neg_elbo"], rel=0.02)
    # more importance samples: a tighter (lower) bound
    assert k50["iw_nll"] < k50["neg_elbo"]
    assert 0 <= k1["active_units"] <= 4 and k1["neg_elbo"] > 0


def test_image_metrics_in_the_feature_space_of_a_genlab_classifier(shapes_gan, shapes_classifier, tmp_path):
    report = run_eval(
        tmp_path / "r.json",
        f"ckpt={shapes_gan}",
        f"eval.classifier_ckpt={shapes_classifier}",
        "eval.n_samples=200",
    )
    m = report["metrics"]
    assert report["features"] == "classifier" and report["n_samples"] == 200 and report["n_reference"] == 200
    assert set(m) >= {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "class_kl"}
    assert all(math.isfinite(m[k]) for k in ("fid", "kid", "class_kl", "density"))
    assert m["fid"] > 0 and 0 <= m["precision"] <= 1 and 0 <= m["coverage"] <= 1
    assert m["class_kl"] >= 0


def test_missing_inception_weights_is_one_clear_line(shapes_gan, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # an empty hub cache: nothing to find
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", f"ckpt={shapes_gan}", "eval.features=inception", "eval.n_samples=8"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "weights-inception-2015-12-05-6726825d.pth" in err and "eval.inception_weights=" in err


def test_the_default_sample_count_is_checked_against_memory_before_anything_is_drawn(
    shapes_gan, monkeypatch, capsys
):
    drawn = []
    monkeypatch.setattr(suite, "generated_batches", lambda *a, **k: drawn.append(a) or iter(()))
    monkeypatch.setattr(suite.Reference, "from_datamodule", lambda *a, **k: drawn.append(a))
    dim = load_run(shapes_gan).model.spec.dim
    # the generated and the real 10000 images at once: the model and the dataset still fit
    monkeypatch.setattr(resources, "available_memory", lambda: 2 * 10_000 * dim * 4 - 1)
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", f"ckpt={shapes_gan}", "eval.metrics=[fid]"])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "eval.n_samples=10000 (the default for image data) needs about" in line
    assert "lower eval.n_samples" in line
    assert drawn == [] and not (Path(shapes_gan).parent / "eval.json").exists()


def test_classifier_features_need_a_classifier_checkpoint(shapes_gan, ring_gan, capsys):
    with pytest.raises(SystemExit):
        main(["eval", f"ckpt={shapes_gan}", "eval.features=classifier"])
    assert "eval.classifier_ckpt is not set" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", f"ckpt={shapes_gan}", f"eval.classifier_ckpt={ring_gan}"])
    assert "not a classifier" in capsys.readouterr().err


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory) -> str:
    """torch-fidelity's InceptionV3 state dict with random values (right shapes): no download needed."""
    return str(fidelity_state_dict(tmp_path_factory.mktemp("inception") / INCEPTION_FILE))


@pytest.mark.slow  # InceptionV3 at 299 px on the CPU: about a minute
def test_inception_path_works_when_weights_are_given(shapes_gan, random_inception_weights, tmp_path):
    report = run_eval(
        tmp_path / "r.json",
        f"ckpt={shapes_gan}",
        f"eval.inception_weights={random_inception_weights}",
        "eval.n_samples=6",
        "eval.batch_size=6",
    )
    m = report["metrics"]
    assert report["features"] == "inception"
    assert set(m) >= {"fid", "kid", "is", "precision", "recall", "density", "coverage"}
    assert all(math.isfinite(m[k]) for k in ("fid", "kid", "is"))
    assert m["is"] >= 1.0 - 1e-6  # exp of a KL: never below 1


def test_callback_logs_the_metrics_during_training_and_serves_as_monitor(shapes_classifier, tmp_path):
    run = tmp_path / "run"
    callback = "+callbacks.eval_metrics"
    run_train(
        run,
        *SHAPES_GAN,
        *short(8, 4),
        f"{callback}.classifier_ckpt={shapes_classifier}",
        f"{callback}.n_samples=64",
        "callbacks.model_checkpoint.monitor=val/fid",
        "optimized_metric=val/fid",
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"val/fid", "val/kid", "val/precision", "val/coverage", "val/class_kl"} <= set(metrics)
    assert math.isfinite(metrics["val/fid"]) and metrics["val/fid"] > 0
    # the checkpoint callback ranked checkpoints by it, each with the FID logged at its own step
    logged = {e.step: e.value for e in tensorboard(run).Scalars("val/fid")}
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    state = next(v for k, v in last["callbacks"].items() if "'monitor': 'val/fid'" in k)
    assert state["dirpath"] == "."  # paths relative to the checkpoint directory: a moved run keeps working
    scored = {int(Path(p).stem.removeprefix("step")): float(v) for p, v in state["best_k_models"].items()}
    assert all("/" not in p for p in state["best_k_models"])
    assert sorted(scored) == [4, 8]
    # Lightning writes a step-based validation's scalars one step earlier (3, 7): match them in order
    rounds = [logged[step] for step in sorted(logged)]
    assert [scored[step] for step in sorted(scored)] == pytest.approx(rounds, rel=1e-5)


def test_the_eval_callback_logs_2d_modes_and_the_health_monitor_reads_the_same_round(tmp_path, monkeypatch):
    rounds = []  # one evaluation per validation round, whoever reads it
    run_plan = suite.EvalPlan.run
    monkeypatch.setattr(
        suite.EvalPlan, "run", lambda plan, model, *a: rounds.append(1) or run_plan(plan, model, *a)
    )
    run = tmp_path / "run"
    run_train(run, *RING_GAN, *short(40, 20), "callbacks=eval", "callbacks.eval_metrics.metrics=[modes]")
    board = tensorboard(run)

    def values(tag: str) -> list[float]:
        return [e.value for e in sorted(board.Scalars(tag), key=lambda e: e.step)]

    covered, total = values("val/modes_covered"), values("val/num_modes")
    assert len(covered) == 2 and total == [8.0, 8.0] and len(values("val/hq_fraction")) == 2
    assert values("health/modes_covered_fraction") == pytest.approx([c / 8 for c in covered])
    assert len(rounds) == 2


def test_without_the_eval_callback_the_gan_logs_no_mode_coverage_but_health_still_measures_it(tmp_path):
    run = tmp_path / "run"
    run_train(run, *RING_GAN, *short(40, 20))
    tags = tensorboard(run).Tags()["scalars"]
    assert "val/loss_d" in tags and "val/modes_covered" not in tags and "val/hq_fraction" not in tags
    assert "health/modes_covered_fraction" in tags

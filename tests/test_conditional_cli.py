"""Conditional models end to end: `genlab sample class=/classes=`, conditional_accuracy and intra-FID in
`genlab eval` and the training callback, and their one-line errors (tiny runs on the built-in shapes data)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from runs_util import SHAPES_GAN, SHAPES_VAE, run_cli, run_train, short

from genlab.checkpoint import load_run
from genlab.data.synthetic import ShapesConfig, ShapesDataModule
from genlab.metrics.features import ClassifierFeatures
from genlab.metrics.request import EvalRequest
from genlab.metrics.suite import EvalPlan

# unrotated shapes at a high learning rate: a classifier above 99% test accuracy in 60 steps
SHAPES_CLASSIFIER = [
    "dataset=shapes",
    "dataset.rotation_max=0",
    "dataset.n_train=2000",
    "model=classifier",
    "model.width=8",
    "dataset.batch_size=32",
    "optimizer.lr=0.005",
]
CONDITIONAL = ["model.conditional=true"]


def trained(tmp_path_factory, name: str, *overrides: str, steps: int = 20) -> str:
    run = tmp_path_factory.mktemp(name)
    run_train(run, *overrides, *short(steps, steps // 2))
    return str(run / "checkpoints" / "last.ckpt")


@pytest.fixture(scope="module")
def cgan(tmp_path_factory) -> str:
    return trained(tmp_path_factory, "cgan", *SHAPES_GAN, *CONDITIONAL, "model.ac_weight=0.5")


@pytest.fixture(scope="module")
def cvae(tmp_path_factory) -> str:
    return trained(tmp_path_factory, "cvae", *SHAPES_VAE, *CONDITIONAL)


@pytest.fixture(scope="module")
def plain_gan(tmp_path_factory) -> str:
    return trained(tmp_path_factory, "gan", *SHAPES_GAN, steps=2)


@pytest.fixture(scope="module")
def shapes_classifier(tmp_path_factory) -> str:
    return trained(tmp_path_factory, "clf", *SHAPES_CLASSIFIER, steps=60)


def sample_npy(capsys, tmp_path, ckpt: str, *args: str) -> np.ndarray:
    out = tmp_path / f"s{len(list(tmp_path.iterdir()))}.npy"
    code, stdout, err = run_cli(capsys, "sample", f"ckpt={ckpt}", f"out={out}", *args)
    assert code == 0, err
    return np.load(out)


def one_line_error(capsys, command: str, *args: str) -> str:
    code, _, err = run_cli(capsys, command, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"genlab {command}: error: "), err
    return lines[0]


# ---- genlab sample ---------------------------------------------------------------------------------
def test_sample_one_class_changes_with_the_class_and_repeats_with_the_seed(capsys, tmp_path, cgan):
    sevens = sample_npy(capsys, tmp_path, cgan, "class=1", "n=6", "seed=3")
    assert sevens.shape == (6, 1, 32, 32)
    np.testing.assert_array_equal(sample_npy(capsys, tmp_path, cgan, "class=1", "n=6", "seed=3"), sevens)
    other = sample_npy(capsys, tmp_path, cgan, "class=2", "n=6", "seed=3")  # same noise, other class
    assert (np.abs(other - sevens).reshape(6, -1).max(1) > 1e-3).all()


def test_default_class_grid_has_one_row_per_class_and_classes_picks_rows(capsys, tmp_path, cgan):
    grid = sample_npy(capsys, tmp_path, cgan, "n=9")  # 3 classes: 3 per class, the same noise in every row
    assert grid.shape == (9, 1, 32, 32)
    row = sample_npy(capsys, tmp_path, cgan, "classes=[1]", "n=3")
    np.testing.assert_allclose(row, grid[3:6], atol=1e-6)
    two = sample_npy(capsys, tmp_path, cgan, "classes=[2,0]", "n=7")  # 7 // 2 = 3 per class
    np.testing.assert_allclose(two, np.concatenate([grid[6:9], grid[0:3]]), atol=1e-6)
    code, out, _ = run_cli(capsys, "sample", f"ckpt={cgan}", "n=30", f"out={tmp_path}/grid.png")
    assert code == 0 and "one row per class" in out
    from PIL import Image

    width, height = Image.open(tmp_path / "grid.png").size  # 3 rows of 10 images (34 px each with padding)
    assert (width, height) == (2 + 10 * 34, 2 + 3 * 34)


def test_sample_classes_in_interpolation_and_reconstruction_of_a_cvae(capsys, tmp_path, cvae):
    grid = sample_npy(capsys, tmp_path, cvae, "mode=interpolate", "n=20", "class=2")
    assert grid.shape == (20, 1, 32, 32)
    other = sample_npy(capsys, tmp_path, cvae, "mode=interpolate", "n=20", "class=0")  # same seed, same z
    assert np.abs(grid - other).reshape(20, -1).max(1).min() > 1e-3  # every image decoded with its class
    pairs = sample_npy(capsys, tmp_path, cvae, "mode=reconstruct", "n=4")  # each image with its own label
    assert pairs.shape == (8, 1, 32, 32)
    assert sample_npy(capsys, tmp_path, cvae, "classes=[0,1,2]", "n=6").shape == (6, 1, 32, 32)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["class=3"], "class=3: class 3 is not a class of shapes, whose classes are 0..2"),
        (["classes=[0,5]"], "classes=[0, 5]: class 5 is not a class of shapes"),
        (["class=1", "classes=[0]"], "set class or classes, not both"),
        (["classes=[]"], "classes=[] must be a non-empty list of class numbers"),
        (["class=-1"], "class=-1 must be a class number >= 0 (e.g. class=7)"),
        (["class=a"], "class='a' must be a class number"),
        (["mode=reconstruct", "class=1"], "mode=reconstruct keeps each image's own class"),
    ],
)
def test_sample_class_mistakes_are_one_line(capsys, tmp_path, cgan, args, needle):
    line = one_line_error(capsys, "sample", f"ckpt={cgan}", f"out={tmp_path}/x.npy", *args)
    assert needle in line


def test_sample_class_of_an_unconditional_checkpoint_is_one_line(capsys, tmp_path, plain_gan):
    line = one_line_error(capsys, "sample", f"ckpt={plain_gan}", f"out={tmp_path}/x.npy", "class=1")
    assert "class=1 needs a class-conditional checkpoint (trained with model.conditional=true)" in line


def test_sample_help_lists_the_class_keys(capsys):
    code, out, _ = run_cli(capsys, "sample", "--help")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert "n samples of this class only" in lines["class"] and "one row per class" in lines["classes"]


# ---- genlab eval and the training callback ---------------------------------------------------------
def run_eval(capsys, tmp_path, ckpt: str, *args: str) -> dict:
    out = tmp_path / "eval.json"
    code, _, err = run_cli(capsys, "eval", f"ckpt={ckpt}", f"out={out}", *args)
    assert code == 0, err
    return json.loads(out.read_text())


@pytest.mark.parametrize("which", ["cgan", "cvae"])
def test_eval_reports_conditional_accuracy_and_intra_fid(capsys, tmp_path, request, shapes_classifier, which):
    ckpt = request.getfixturevalue(which)
    report = run_eval(
        capsys, tmp_path, ckpt, f"eval.classifier_ckpt={shapes_classifier}", "eval.n_samples=90"
    )
    m = report["metrics"]
    assert 0.0 <= m["conditional_accuracy"] <= 1.0
    assert math.isfinite(m["intra_fid"]) and len(m["intra_fid_per_class"]) == 3
    assert m["intra_fid"] == pytest.approx(np.mean(m["intra_fid_per_class"]))
    assert {"fid", "class_kl", "precision"} <= set(m)
    if which == "cvae":  # the likelihoods of a CVAE are bounds on -log p(x|y)
        assert math.isfinite(m["iw_nll"]) and m["iw_nll"] <= m["neg_elbo"] + 1.0


def test_conditional_metrics_need_a_conditional_checkpoint_and_a_matching_classifier(
    capsys, tmp_path, plain_gan, cgan, shapes_classifier
):
    clf = f"eval.classifier_ckpt={shapes_classifier}"
    line = one_line_error(capsys, "eval", f"ckpt={plain_gan}", clf, "eval.metrics=[intra_fid]")
    assert "intra_fid needs a class-conditional checkpoint (model.conditional=true)" in line
    line = one_line_error(capsys, "eval", f"ckpt={cgan}", "eval.metrics=[conditional_accuracy]")
    assert "conditional_accuracy needs eval.features=classifier" in line


def test_training_callback_logs_conditional_metrics(tmp_path, shapes_classifier):
    run = tmp_path / "run"
    run_train(
        run,
        *SHAPES_GAN,
        *CONDITIONAL,
        *short(4, 4),
        f"+callbacks.eval_metrics.classifier_ckpt={shapes_classifier}",
        "+callbacks.eval_metrics.n_samples=60",
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["val/conditional_accuracy"] <= 1 and math.isfinite(metrics["val/intra_fid"])


# ---- the metrics on real images ------------------------------------------------------------------
class RealImages(torch.nn.Module):
    """A stand-in conditional generator that answers each requested class with a real image of that class
    (or, ``shuffled``, with any real image): what a perfect generator / one that ignores the label would do."""

    family = "real images"
    conditional = True

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, spec, shuffled: bool = False) -> None:
        super().__init__()
        self.spec, self.num_classes = spec, int(spec.num_classes)
        self.pools = [images[labels == c] for c in range(self.num_classes)]
        self.taken = [0] * self.num_classes
        self.images, self.shuffled = images, shuffled
        self.register_buffer("anchor", torch.zeros(()))

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self.spec.value_range
        return ((x - lo) / (hi - lo)).clamp(0, 1)

    def sample(self, n: int, generator=None, labels=None) -> torch.Tensor:
        if self.shuffled:
            return self.images[torch.randint(len(self.images), (n,), generator=generator)]
        out = []
        for c in labels.tolist():  # each pool in turn: n requests for a class use its images once each
            out.append(self.pools[c][self.taken[c] % len(self.pools[c])])
            self.taken[c] += 1
        return torch.stack(out)


def conditional_metrics_of_real_images(datamodule, classifier_ckpt: str, n: int, shuffled: bool) -> dict:
    images, labels = datamodule.real_labelled(n, split="test", generator=torch.Generator().manual_seed(1))
    stub = RealImages(images, labels, datamodule.spec, shuffled)
    request = EvalRequest(
        metrics=["conditional_accuracy", "intra_fid"],
        n_samples=n,
        classifier_ckpt=classifier_ckpt,
        batch_size=500,
    )
    classifier = load_run(classifier_ckpt).model
    plan = EvalPlan.build(request.resolve(stub), stub, datamodule, classifier=classifier)
    return plan.run(stub)


def classifier_accuracy(classifier_ckpt: str, datamodule, n: int) -> float:
    images, labels = datamodule.real_labelled(n, split="test", generator=torch.Generator().manual_seed(1))
    features = ClassifierFeatures(load_run(classifier_ckpt).model, datamodule.spec.channels)
    with torch.no_grad():
        _, logits = features(datamodule_to_unit(datamodule, images))
    return float((logits[:, 0].argmax(-1) == labels).double().mean())


def datamodule_to_unit(datamodule, x: torch.Tensor) -> torch.Tensor:
    lo, hi = datamodule.spec.value_range
    return ((x - lo) / (hi - lo)).clamp(0, 1)


def test_conditional_accuracy_of_real_images_is_the_classifier_accuracy_and_chance_when_shuffled(
    shapes_classifier,
):
    dm = ShapesDataModule(ShapesConfig(name="shapes", n_train=64, n_test=900, rotation_max=0.0), None)
    n = 900  # the whole test split: the stand-in returns exactly its images, each under its own label
    accuracy = classifier_accuracy(shapes_classifier, dm, n)
    assert accuracy > 0.9  # far from chance, so a mix-up of samples and requested labels shows
    matched = conditional_metrics_of_real_images(dm, shapes_classifier, n, shuffled=False)
    assert matched["conditional_accuracy"] == pytest.approx(accuracy, abs=1e-9)
    assert matched["intra_fid"] == pytest.approx(0.0, abs=1e-3)  # each class against itself
    shuffled = conditional_metrics_of_real_images(dm, shapes_classifier, n, shuffled=True)
    assert shuffled["conditional_accuracy"] == pytest.approx(1 / 3, abs=0.06)
    assert shuffled["intra_fid"] > 10 * max(matched["intra_fid"], 1e-3)


@pytest.mark.slow  # trains the MNIST classifier: about 2 CPU minutes
def test_conditional_accuracy_of_real_mnist_is_the_test_accuracy_and_a_tenth_when_shuffled(
    real_data_dir, tmp_path_factory
):
    from genlab.data.images import TorchvisionConfig, TorchvisionDataModule

    classifier = trained(
        tmp_path_factory,
        "mnist_clf",
        "model=classifier",
        "dataset=mnist",
        f"paths.data_dir={real_data_dir}",
        "optimizer.scheduler=cosine",
        steps=1000,
    )
    dm = TorchvisionDataModule(
        TorchvisionConfig(name="mnist", data_dir=str(real_data_dir), value_range=[0, 1])
    )
    accuracy = classifier_accuracy(classifier, dm, 10_000)
    matched = conditional_metrics_of_real_images(dm, classifier, 10_000, shuffled=False)
    shuffled = conditional_metrics_of_real_images(dm, classifier, 10_000, shuffled=True)
    print(
        f"test accuracy {accuracy:.4f}, conditional accuracy {matched['conditional_accuracy']:.4f}, "
        f"shuffled {shuffled['conditional_accuracy']:.4f}"
    )
    assert accuracy >= 0.985
    assert matched["conditional_accuracy"] == pytest.approx(accuracy, abs=1e-9)
    assert shuffled["conditional_accuracy"] == pytest.approx(0.1, abs=0.015)


# ---- config errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args,needle",
    [
        (
            ["dataset=folder", "dataset.path={tmp}", "model=gan", "model.conditional=true"],
            "model.conditional=true needs a labelled dataset, but dataset folder has no classes",
        ),
        (
            ["dataset=folder", "dataset.path={tmp}", "model=vae", "model.conditional=true"],
            "model.conditional=true needs a labelled dataset",
        ),
        (
            ["dataset=shapes", "model=gan", "model.conditional=true", "model.pack=2"],
            "model.pack=2 cannot be combined with model.conditional=true",
        ),
        (
            ["dataset=shapes", "model=gan", "model.ac_weight=1"],
            "model.ac_weight=1.0 needs model.conditional=true",
        ),
        (
            ["dataset=shapes", "model=vae", "model.conditional=maybe"],
            "model.conditional='maybe' has the wrong type",
        ),
    ],
)
def test_train_conditional_mistakes_are_one_line(capsys, tmp_path, args, needle):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    line = one_line_error(capsys, "train", f"hydra.run.dir={tmp_path}/run", *args)
    assert needle in line
    assert not (tmp_path / "run").exists()

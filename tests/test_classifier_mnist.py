"""The genlab classifier on real MNIST: accuracy, and its checkpoint as the feature extractor of `genlab eval`.

Slow: a real training run on the CPU (about 2 minutes on 2 idle cores), then tiny GAN runs on mnist and
stacked_mnist evaluated in the classifier's feature space.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from builders import build
from runs_util import run_train, short
from torchvision.datasets import MNIST

from genlab.checkpoint import load_run
from genlab.cli import main
from genlab.data.stacked_mnist import StackedMNISTDataModule
from genlab.metrics import stacked_modes
from genlab.metrics.features import ClassifierFeatures, extract

pytestmark = pytest.mark.slow

CLASSIFIER_STEPS = 1000  # batch 128: ~2 epochs
MIN_TEST_ACCURACY = 0.985
TINY_DCGAN = [
    "model=gan",
    "model.g_width=8",
    "model.d_width=8",
    "model.latent_dim=16",
    "dataset.batch_size=32",
]


@pytest.fixture(scope="module")
def mnist_classifier(real_data_dir, tmp_path_factory) -> str:
    run = tmp_path_factory.mktemp("classifier")
    run_train(
        run,
        "model=classifier",
        "dataset=mnist",
        f"paths.data_dir={real_data_dir}",
        "optimizer.scheduler=cosine",
        *short(CLASSIFIER_STEPS, CLASSIFIER_STEPS // 2),
    )
    return str(run / "checkpoints" / "last.ckpt")


def test_classifier_reaches_the_stated_test_accuracy(mnist_classifier, real_data_dir):
    model = load_run(mnist_classifier).model
    test = MNIST(str(real_data_dir), train=False, download=True)  # files present: MD5 check, no request
    x, y = test.data.float().div(255).unsqueeze(1), test.targets
    with torch.no_grad():
        predicted = torch.cat([model(b).argmax(1) for b in x.split(1000)])
    accuracy = (predicted == y).float().mean().item()
    print(f"classifier test accuracy after {CLASSIFIER_STEPS} steps: {accuracy:.4f}")
    assert accuracy >= MIN_TEST_ACCURACY


def test_it_reads_the_three_digits_of_real_stacked_mnist(mnist_classifier, real_data_dir):
    """The benchmark's protocol on real data: 26000 stacked test digits, each channel classified."""
    dm = build(
        StackedMNISTDataModule,
        data_dir=str(real_data_dir),
        image_size=32,
        value_range=[0.0, 1.0],
        n_test=26000,
    )
    batches = list(
        dm.test_dataloader()
    )  # every test image in order, in [0, 1], with its label d0*100+d1*10+d2
    labels = torch.cat([y for _, y in batches])
    _, logits = extract(
        ClassifierFeatures(load_run(mnist_classifier).model, image_channels=3), (x for x, _ in batches)
    )
    digits = logits.argmax(-1)
    predicted = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
    # ~ accuracy^3, a little lower: the 32 px stacked digits are resized back to the classifier's 28 px
    assert (predicted == labels).float().mean() > 0.93
    # 26000 uniform draws over 1000 modes: ~1000 e^-26 modes empty, KL of the histogram ~ 999 / 52000 = 0.019
    stats = stacked_modes(digits)
    assert stats["modes"] == 1000
    assert stats["kl_uniform"] < 0.04


@pytest.mark.parametrize("dataset", ["mnist", "stacked_mnist"])
def test_eval_of_a_gan_in_classifier_feature_space(dataset, mnist_classifier, real_data_dir, tmp_path):
    run = tmp_path / "run"
    run_train(run, f"dataset={dataset}", *TINY_DCGAN, f"paths.data_dir={real_data_dir}", *short(4, 2))
    out = tmp_path / "eval.json"
    main(
        [
            "eval",
            f"ckpt={run / 'checkpoints' / 'last.ckpt'}",
            f"eval.classifier_ckpt={mnist_classifier}",
            "eval.n_samples=300",
            f"paths.data_dir={real_data_dir}",  # eval reads its own data directory, not the run's
            f"out={out}",
        ]
    )
    report = json.loads(out.read_text())
    m = report["metrics"]
    assert report["features"] == "classifier" and report["n_samples"] == 300 and report["split"] == "test"
    assert all(math.isfinite(m[k]) for k in ("fid", "kid", "precision", "recall", "density", "coverage"))
    if dataset == "mnist":
        assert 0 <= m["class_kl"] and math.isfinite(m["class_kl"])
    else:
        assert m["num_modes"] == 1000 and 1 <= m["modes_covered"] <= 300
        assert 0 <= m["mode_kl"] <= math.log(1000) + 1e-9

"""The real Inception network (either file) behaves like the standard FID network on MNIST, and `genlab eval
eval.features=inception` gives FID/KID/IS for an MNIST GAN. Needs the file on disk:
``GENLAB_TEST_INCEPTION_WEIGHTS=<weights-inception-2015-12-05-6726825d.pth or inception-2015-12-05.pt>``
(no package on the registry ships it; see the README). Skipped otherwise."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from inception_files import REAL_INCEPTION_ENV, real_inception
from runs_util import run_cli, run_train
from torchvision import datasets

from genlab.metrics.features import InceptionFeatures, extract
from genlab.metrics.fid import frechet_distance, inception_score

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(real_inception() is None, reason=f"set {REAL_INCEPTION_ENV} to a real Inception file"),
]
N = 500  # per set: InceptionV3 at 299 px, about a minute on 2 CPU cores


@pytest.fixture(scope="module")
def digits(real_data_dir) -> torch.Tensor:
    x = datasets.MNIST(str(real_data_dir), train=False, download=True).data[: 2 * N]
    return x.unsqueeze(1).float() / 255


@pytest.fixture(scope="module")
def features(digits):
    net = InceptionFeatures(str(real_inception())).eval()
    blurred = F.avg_pool2d(F.pad(digits, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    return {
        name: extract(net, x.split(100))
        for name, x in {"a": digits[:N], "b": digits[N:], "blurred": blurred[:N]}.items()
    }


def test_features_behave_like_the_standard_network(features):
    a, b, blurred = (features[k][0].double() for k in ("a", "b", "blurred"))
    same = frechet_distance(a, a)
    real_vs_real = frechet_distance(a, b)  # two halves of the test digits
    real_vs_blurred = frechet_distance(a, blurred)
    assert abs(same) < 1e-2
    assert real_vs_real < real_vs_blurred / 3, (real_vs_real, real_vs_blurred)
    is_mean, _ = inception_score(features["a"][1][:, 0])
    assert 1.2 < is_mean < 6.0  # digits are no ImageNet class: a low but not degenerate score


def test_eval_gives_fid_kid_is_for_an_mnist_gan(real_data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    run_train(
        run,
        "dataset=mnist",
        f"paths.data_dir={real_data_dir}",
        "model=gan",
        "model.g_width=8",
        "model.d_width=8",
        "dataset.batch_size=32",
        "trainer.max_steps=20",
        "trainer.val_check_interval=20",
        "trainer.limit_val_batches=1",
        "trainer.accelerator=cpu",
        "threads=2",
    )
    out = tmp_path / "eval.json"
    code, _, err = run_cli(
        capsys,
        "eval",
        f"ckpt={run / 'checkpoints' / 'last.ckpt'}",
        "eval.features=inception",
        f"eval.inception_weights={real_inception()}",
        f"eval.n_samples={N}",
        f"paths.data_dir={real_data_dir}",  # eval reads its own data directory, not the run's
        f"out={out}",
    )
    assert code == 0, err
    m = json.loads(out.read_text())["metrics"]
    assert all(math.isfinite(m[k]) for k in ("fid", "kid", "is"))
    assert m["fid"] > 1.0  # 20 steps of a tiny GAN are far from the data

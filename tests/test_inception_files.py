"""`eval.features=inception` offline from either file users have: torch-fidelity's state dict or the TorchScript
`inception-2015-12-05.pt` of StyleGAN2-ADA / clean-fid (here tiny random stand-ins with the same interfaces)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from inception_files import fidelity_state_dict, scripted_detector
from runs_util import SHAPES_GAN, run_cli, run_train, short

from genlab.metrics.features import (
    INCEPTION_SCRIPT_FILE,
    InceptionFeatures,
    ScriptedInception,
    inception_weights_path,
    is_torchscript,
)
from genlab.utils.errors import ConfigError


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    return scripted_detector(tmp_path_factory.mktemp("ts") / INCEPTION_SCRIPT_FILE)


@pytest.fixture(scope="module")
def shapes_gan(tmp_path_factory) -> str:
    run = tmp_path_factory.mktemp("gan") / "run"
    run_train(run, *SHAPES_GAN, *short(2, 2), "threads=1")
    return str(run / "checkpoints" / "last.ckpt")


def test_torchscript_file_gives_pool_features_and_the_logits_without_output_bias(detector):
    extractor = InceptionFeatures(str(detector)).eval()
    assert isinstance(extractor.net, ScriptedInception)
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        features, logits = extractor(x)
        as_uint8 = (x * 255).round().to(torch.uint8).expand(-1, 3, -1, -1)
        scripted = torch.jit.load(str(detector))
        expected_features = scripted(as_uint8, return_features=True)
        expected_probs = scripted(as_uint8, no_output_bias=True)  # StyleGAN2-ADA's IS
    assert features.shape == (5, 2048) and logits.shape == (5, 1, 1008)
    torch.testing.assert_close(features, expected_features)
    torch.testing.assert_close(logits[:, 0].softmax(-1), expected_probs, rtol=1e-4, atol=1e-6)


def test_torchscript_file_is_found_in_the_torch_hub_cache(detector, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    place = tmp_path / "hub" / "checkpoints" / INCEPTION_SCRIPT_FILE
    place.parent.mkdir(parents=True)
    place.write_bytes(detector.read_bytes())
    assert inception_weights_path(None) == place
    assert isinstance(InceptionFeatures(None).net, ScriptedInception)


def test_eval_computes_fid_kid_is_from_a_torchscript_file(shapes_gan, detector, tmp_path, capsys):
    out = tmp_path / "eval.json"
    code, stdout, err = run_cli(
        capsys,
        "eval",
        f"ckpt={shapes_gan}",
        "eval.features=inception",
        f"eval.inception_weights={detector}",
        "eval.n_samples=40",
        "eval.batch_size=20",
        f"out={out}",
    )
    assert code == 0, err
    report = json.loads(out.read_text())
    assert report["features"] == "inception" and not report["skipped"]
    m = report["metrics"]
    assert all(math.isfinite(m[k]) for k in ("fid", "kid", "is", "precision", "coverage"))
    assert m["fid"] > 0 and m["is"] >= 1.0 - 1e-6


def test_files_that_are_not_the_network_are_one_line_errors(shapes_gan, tmp_path):
    linear = tmp_path / "linear.pt"
    torch.jit.script(torch.nn.Linear(3, 3)).save(str(linear))
    no_output = scripted_detector(tmp_path / "no_output.pt", with_output=False)
    for path in (linear, no_output):
        assert is_torchscript(path)
        with pytest.raises(ConfigError, match="is not the TorchScript InceptionV3") as info:
            InceptionFeatures(str(path))
        assert "\n" not in str(info.value)
    # a genlab checkpoint holds no code: it is read as a state dict (weights only) and refused as one
    assert not is_torchscript(shapes_gan)
    with pytest.raises(ConfigError, match="is not torch-fidelity's InceptionV3 state dict"):
        InceptionFeatures(shapes_gan)


def test_fidelity_state_dict_file_gives_the_same_outputs_shape(tmp_path):
    path = fidelity_state_dict(tmp_path / "weights-inception-2015-12-05-6726825d.pth")
    assert not is_torchscript(path)
    extractor = InceptionFeatures(str(path)).eval()
    with torch.no_grad():
        features, logits = extractor(torch.rand(2, 3, 32, 32))
    assert features.shape == (2, 2048) and logits.shape == (2, 1, 1008)
    assert torch.isfinite(features).all() and torch.isfinite(logits).all()

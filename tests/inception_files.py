"""Inception network files for tests, in both formats genlab reads, without a download.

- :func:`scripted_detector`: a tiny random network with the call interface of StyleGAN2-ADA's TorchScript
  ``inception-2015-12-05.pt`` (uint8 images of any size; ``return_features`` -> (B, 2048); otherwise softmax
  probabilities over 1008 classes, ``no_output_bias`` drops the output layer's bias), saved as TorchScript.
- :func:`fidelity_state_dict`: torch-fidelity's InceptionV3 state dict with random values (the real shapes).
- :func:`real_inception`: the real network file named by ``$GENLAB_TEST_INCEPTION_WEIGHTS`` (either format),
  for the tests that check the features behave like the standard network; None when not set.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

REAL_INCEPTION_ENV = "GENLAB_TEST_INCEPTION_WEIGHTS"


class TinyDetector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(3, 2048, 4, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.output = nn.Linear(2048, 1008)

    def forward(
        self, img: Tensor, return_features: bool = False, use_fp16: bool = False, no_output_bias: bool = False
    ) -> Tensor:
        x = F.interpolate(img.to(torch.float32), size=(32, 32), mode="bilinear", align_corners=False)
        features = self.layers((x - 128) / 128).reshape(-1, 2048)
        if return_features:
            return features
        logits = F.linear(features, self.output.weight) if no_output_bias else self.output(features)
        return torch.softmax(logits, 1)


class NoOutputLayer(nn.Module):
    """A network with the same call but no ``output`` layer: not the detector genlab knows."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(3, 2048, 4, stride=4), nn.AdaptiveAvgPool2d(1))

    def forward(
        self, img: Tensor, return_features: bool = False, use_fp16: bool = False, no_output_bias: bool = False
    ) -> Tensor:
        return self.layers(img.to(torch.float32)).reshape(-1, 2048)


def scripted_detector(path: Path, seed: int = 0, with_output: bool = True) -> Path:
    torch.manual_seed(seed)
    net = TinyDetector() if with_output else NoOutputLayer()
    torch.jit.script(net.eval()).save(str(path))
    return path


def fidelity_state_dict(path: Path) -> Path:
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    mp = pytest.MonkeyPatch()
    mp.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
    mp.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, *a, **k: None)
    torch.manual_seed(0)
    net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    mp.undo()
    torch.save(net.state_dict(), path)
    return path


def real_inception() -> Path | None:
    value = os.environ.get(REAL_INCEPTION_ENV)
    return Path(value) if value and Path(value).is_file() else None

"""Feature extractors of evaluation: images in [0, 1] -> (features, class logits).

- ``inception``: the InceptionV3 of TF-FID (``inception-2015-12-05``), 2048-d pool features and the 1008
  class logits of its output layer without bias (torch-fidelity's ``logits_unbiased``), from either of
  the two files users have: torch-fidelity's state dict ``weights-inception-2015-12-05-6726825d.pth``
  (behind torchmetrics' FID/KID/IS) or the TorchScript ``inception-2015-12-05.pt`` of StyleGAN2-ADA and
  clean-fid. Images are converted to what both expect: uint8 RGB (grayscale repeated to 3 channels); they
  resize to 299 px themselves. The file is only read from a local path (``eval.inception_weights``,
  ``$GENLAB_INCEPTION_WEIGHTS`` or torch hub's cache, see :func:`inception_search_path`): evaluation never
  downloads. A TorchScript file is a program, so genlab loads one only from those places, never from a
  checkpoint or a run directory.
- ``classifier``: a genlab :class:`~genlab.models.classifier.Classifier` network (loaded from its checkpoint by
  the caller); its penultimate
  activations and its logits. Images are resized to its training size; a grayscale classifier reads
  multi-channel images (stacked MNIST) one channel at a time (features concatenated, one set of
  logits per channel).

Both return ``(features (B, F), logits (B, G, K))`` with G = 1, or G = channels for per-channel reading.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.data.datamodule import DEFAULT_VALUE_RANGE
from genlab.utils.errors import ConfigError

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"
# the same network as TorchScript (StyleGAN2-ADA, clean-fid)
INCEPTION_SCRIPT_FILE = "inception-2015-12-05.pt"
INCEPTION_SCRIPT_URL = (
    f"https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/{INCEPTION_SCRIPT_FILE}"
)
FEATURE_EXTRACTORS = ("inception", "classifier")


INCEPTION_ENV = "GENLAB_INCEPTION_WEIGHTS"


class FeaturesUnavailable(ConfigError):
    """The feature extractor's weights are nowhere to be found (not a mistake in what the user passed):
    `genlab eval` skips the metrics that need these features and computes the others."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def inception_search_path() -> list[tuple[str, Path | None]]:
    """Where genlab looks for the Inception weights when ``eval.inception_weights`` is not set, in order:
    (how the place is named, the file there or None when the place is not set)."""
    env = os.environ.get(INCEPTION_ENV)
    hub = Path(torch.hub.get_dir()) / "checkpoints"  # torch-fidelity downloads its file here too
    where = "torch hub cache ($TORCH_HOME/hub, default ~/.cache/torch/hub)"
    return [
        (f"${INCEPTION_ENV}", Path(env).expanduser() if env else None),
        (where, hub / INCEPTION_FILE),
        (where, hub / INCEPTION_SCRIPT_FILE),
    ]


def inception_weights_path(path: str | None) -> Path:
    """The local Inception weights file: ``path``, else the first file found on :func:`inception_search_path`.

    A ``path`` that does not exist is a ConfigError; weights found nowhere are :class:`FeaturesUnavailable`
    naming every place searched."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError(
                f"eval.inception_weights={path} does not exist; download {INCEPTION_URL} (or "
                f"{INCEPTION_SCRIPT_URL}) and point it there"
            )
        return p
    searched = inception_search_path()
    for _, candidate in searched:
        if candidate is not None and candidate.is_file():
            return candidate
    places = ", ".join(
        f"{where} (not set)" if candidate is None else f"{candidate} [{where}]"
        for where, candidate in searched
    )
    reason = f"Inception weights not found (searched: eval.inception_weights (not set), {places})"
    raise FeaturesUnavailable(
        f"{reason}; download {INCEPTION_URL} (or {INCEPTION_SCRIPT_URL}) and set "
        f"eval.inception_weights=<path> or ${INCEPTION_ENV} (or use eval.features=classifier with "
        "eval.classifier_ckpt)",
        reason,
    )


def is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (it holds code) rather than a saved state dict."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.split("/")[1:2] == ["code"] for name in archive.namelist())


def load_error(path: Path, what: str, e: Exception) -> ConfigError:
    reason = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
    return ConfigError(
        f"eval.inception_weights={path} is not {what} ({reason}); download {INCEPTION_URL} or "
        f"{INCEPTION_SCRIPT_URL}"
    )


class FidelityInception(nn.Module):
    """torch-fidelity's InceptionV3 from its state dict file: uint8 images -> (features, logits_unbiased)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        try:
            self.net = FeatureExtractorInceptionV3(
                "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(path)
            )
        except Exception as e:  # noqa: BLE001 - any failure to load means the file is not these weights
            raise load_error(path, "torch-fidelity's InceptionV3 state dict", e) from e

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.net(x)


class ScriptedInception(nn.Module):
    """The TorchScript InceptionV3 of StyleGAN2-ADA / clean-fid: ``net(x, return_features=True)`` gives the pool
    features; its output layer's weight without the bias gives the logits (what torch-fidelity calls
    ``logits_unbiased``, what StyleGAN2-ADA's IS uses: ``no_output_bias=True``). One forward pass for both."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        what = "the TorchScript InceptionV3 of StyleGAN2-ADA (inception-2015-12-05.pt)"
        try:
            with warnings.catch_warnings():  # torch marks TorchScript deprecated; these files are TorchScript
                warnings.filterwarnings(
                    "ignore", message=".*torch.jit.load.* is deprecated", category=FutureWarning
                )
                self.net = torch.jit.load(str(path), map_location="cpu").eval()
            self.net(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), return_features=True)
        except Exception as e:  # noqa: BLE001 - not a loadable TorchScript file, or not this network
            raise load_error(path, what, e) from e
        output = getattr(self.net, "output", None)
        if output is None or not isinstance(getattr(output, "weight", None), Tensor):
            raise load_error(path, what, ValueError("it has no output layer"))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.net(x, return_features=True).float().flatten(1)
        return features, features @ self.net.output.weight.float().t()


class InceptionFeatures(nn.Module):
    name = "inception"

    def __init__(self, weights_path: str | None = None) -> None:
        super().__init__()
        path = inception_weights_path(weights_path)
        self.net = ScriptedInception(path) if is_torchscript(path) else FidelityInception(path)
        self.num_features = 2048

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (x * 255).round().clamp(0, 255).to(torch.uint8)
        features, logits = self.net(x)
        return features, logits.unsqueeze(1)


class ClassifierFeatures(nn.Module):
    name = "classifier"

    def __init__(self, classifier: nn.Module, image_channels: int) -> None:
        super().__init__()
        self.classifier = classifier.eval()
        spec = classifier.spec
        self.size = spec.image_size
        self.value_range = spec.value_range or DEFAULT_VALUE_RANGE
        if spec.channels == image_channels:
            self.groups = 1
        elif spec.channels == 1:
            self.groups = image_channels
        else:
            raise ConfigError(
                f"eval.classifier_ckpt reads {spec.channels}-channel images but the model makes {image_channels}-channel "
                f"ones; train the classifier on matching data (1-channel classifiers read each channel)"
            )
        self.num_features = classifier.num_features * self.groups

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        b = len(x)
        if self.groups > 1:
            x = x.reshape(b * self.groups, 1, *x.shape[2:])
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(
                x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False
            )
        lo, hi = self.value_range
        x = lo + x.clamp(0, 1) * (hi - lo)
        features = self.classifier.features(x)
        logits = self.classifier.classify(features)
        return features.reshape(b, -1), logits.reshape(b, self.groups, -1)


def build_extractor(
    name: str,
    image_channels: int,
    classifier: nn.Module | None = None,
    inception_weights: str | None = None,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """The configured feature extractor, in eval mode on ``device``; ``classifier`` is the built network of
    ``eval.classifier_ckpt`` (the caller loads checkpoints, metrics never do)."""
    if name == "inception":
        extractor = InceptionFeatures(inception_weights)
    elif name == "classifier":
        extractor = ClassifierFeatures(classifier, image_channels)
    else:
        raise ConfigError(f"eval.features={name!r} is not known; allowed: {', '.join(FEATURE_EXTRACTORS)}")
    return extractor.to(device).eval()


@torch.no_grad()
def extract(extractor: nn.Module, batches: Iterable[Tensor]) -> tuple[Tensor, Tensor]:
    """Features and logits of image batches in [0, 1], concatenated on the CPU."""
    device = next(extractor.parameters()).device
    features, logits = [], []
    for x in batches:
        f, lg = extractor(x.to(device).float())
        features.append(f.float().cpu())
        logits.append(lg.float().cpu())
    return torch.cat(features), torch.cat(logits)

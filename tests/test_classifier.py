"""The genlab classifier: typed config, data checks, size-agnostic features, per-channel feature extraction."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from builders import build

from genlab.config.spec import DataSpec
from genlab.metrics.features import ClassifierFeatures
from genlab.models.classifier import Classifier, ClassifierConfig
from genlab.utils.errors import ConfigError

MNIST_SPEC = DataSpec((1, 28, 28), (0.0, 1.0), num_classes=10, name="mnist")


def tiny(spec: DataSpec = MNIST_SPEC) -> Classifier:
    torch.manual_seed(0)
    return build(Classifier, spec, width=4, dropout=0.0).eval()


@pytest.mark.parametrize("key,value", [("width", 0), ("dropout", 1.0), ("label_smoothing", -0.1)])
def test_bad_config_values_are_one_line_config_errors(key, value):
    with pytest.raises(ConfigError, match=f"model.{key}="):
        ClassifierConfig(**{key: value})


def test_it_needs_labeled_images():
    with pytest.raises(ConfigError, match="needs labeled images"):
        build(Classifier, DataSpec((1, 28, 28), (0.0, 1.0), num_classes=None, name="folder"))
    with pytest.raises(ConfigError, match="2D"):
        build(Classifier, DataSpec((2,), None, num_classes=8, name="ring"))
    with pytest.raises(ConfigError, match="value_range"):
        build(Classifier, DataSpec((1, 28, 28), (-1.0, 1.0), num_classes=10, name="mnist"))


def test_features_and_logits_at_any_image_size():
    model = tiny()
    for size in (28, 32):
        x = torch.rand(5, 1, size, size)
        assert model.features(x).shape == (5, model.num_features) == (5, 16)
        assert model(x).shape == (5, 10)


def test_it_is_a_feature_net_not_a_generator():
    from genlab.models.capabilities import FeatureNet, Sampler

    model = tiny()
    assert isinstance(model, FeatureNet) and not isinstance(model, Sampler)
    assert not hasattr(model, "fixed_z")


def test_grayscale_classifier_reads_each_channel_of_rgb_images():
    model = tiny()
    extractor = ClassifierFeatures(model, image_channels=3)
    x = torch.rand(4, 3, 28, 28)
    features, logits = extractor(x)
    for c in range(3):
        channel = x[:, c : c + 1]
        torch.testing.assert_close(features[:, c * 16 : (c + 1) * 16], model.features(channel))
        torch.testing.assert_close(logits[:, c], model(channel))


def test_images_are_resized_to_the_classifier_size():
    model = tiny()
    extractor = ClassifierFeatures(model, image_channels=1)
    x = torch.rand(3, 1, 32, 32)
    features, logits = extractor(x)
    resized = F.interpolate(x, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
    torch.testing.assert_close(features, model.features(resized))
    assert logits.shape == (3, 1, 10)


def test_rgb_classifier_cannot_read_grayscale_images():
    model = tiny(DataSpec((3, 28, 28), (0.0, 1.0), num_classes=1000, name="stacked_mnist"))
    with pytest.raises(ConfigError, match="channel"):
        ClassifierFeatures(model, image_channels=1)

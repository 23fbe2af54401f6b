"""Stacked MNIST: three MNIST digits stacked as the R, G and B channels, 10^3 = 1000 modes.

The mode-collapse benchmark of Metz et al. (Unrolled GANs, 2017), also used by VEEGAN and PacGAN:
a model's mode coverage is the number of the 1000 digit triples a pretrained classifier finds in
its samples. Each image takes three digits drawn uniformly (with replacement, seeded) from the
MNIST train split (training) or test split (validation/evaluation). The label encodes the triple
as ``d_R * 100 + d_G * 10 + d_B``.

Native size 28 (MNIST's); ``genlab train`` resolves ``image_size: null`` to the smallest size the
model supports above it (32 for DCGAN). The digits come from the cached MNIST tensors at that size
(same files and same missing-data errors as ``dataset=mnist``); stacking is one gather, so the
stacked images are not cached separately.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from genlab.data.datamodule import ImageDataConfig, InMemoryDataModule, canonical_split, split_seed
from genlab.data.images import load_torchvision_split
from genlab.utils.errors import ConfigError


def stack_digits(digits: Tensor, digit_labels: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
    """Digits uint8 (M, 1, H, W), index long (N, 3) -> images (N, 3, H, W) and labels d0*100+d1*10+d2."""
    images = digits[index].flatten(1, 2)  # (N, 3, 1, H, W) -> (N, 3, H, W)
    d = digit_labels[index]
    return images, d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2]


@dataclass(frozen=True)
class StackedMNISTConfig(ImageDataConfig):
    name: str = "stacked_mnist"
    channels: int | None = 3
    download: bool = True  # fetch the files when missing (needs network); false: only use what is there
    n_train: int = 60000  # training images (each 3 random MNIST digits stacked as RGB)
    n_test: int = 10000  # test images

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.channels not in (None, 3):
            raise ConfigError(
                f"dataset.channels={self.channels}: stacked_mnist is RGB by construction; use 3"
            )
        if self.n_train <= 0 or self.n_test <= 0:
            raise ConfigError(f"dataset.n_train={self.n_train} and n_test={self.n_test} must be > 0")


class StackedMNISTDataModule(InMemoryDataModule):
    config_class = StackedMNISTConfig

    @classmethod
    def native_image_size(cls, config: StackedMNISTConfig) -> int:
        return 28

    @classmethod
    def native_channels(cls, config: StackedMNISTConfig) -> int:
        return 3

    @classmethod
    def class_count(cls, config: StackedMNISTConfig) -> int:
        return 1000

    def load_split(self, split: str) -> dict[str, Tensor]:
        split, cfg = canonical_split(split), self.config
        mnist = load_torchvision_split("mnist", cfg.data_dir, self.image_size, split, cfg.download)
        n = cfg.n_train if split == "train" else cfg.n_test
        g = torch.Generator().manual_seed(split_seed(cfg.seed, split))
        index = torch.randint(len(mnist["data"]), (n, 3), generator=g)
        images, labels = stack_digits(mnist["data"], mnist["labels"], index)
        return {"data": images, "labels": labels}

"""The choices of every family, declared once: names a config, a checkpoint or a run directory may use.

A name read from anywhere (the command line, a checkpoint's run record, a run directory) is only ever looked
up here; genlab never imports or instantiates a dotted path that came from a file. Validation messages and
``--help`` list the allowed names from these tables.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

from genlab.errors import ConfigError

V = TypeVar("V")


class Registry(Mapping[str, V], Generic[V]):
    """A read-only name -> entry table whose lookups fail with one line naming the allowed names."""

    def __init__(self, key: str, entries: dict[str, V]) -> None:
        self.key = key  # how the user sets it, e.g. "model.family"
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> V:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def get_checked(self, name: object, error: type[Exception] = ConfigError) -> V:
        if not isinstance(name, str) or name not in self._entries:
            raise error(f"{self.key}={name!r} is not known; allowed: {', '.join(sorted(self._entries))}")
        return self._entries[name]


@functools.cache
def model_registry() -> Registry:
    from genlab.models.classifier import Classifier
    from genlab.models.gan import GAN
    from genlab.models.vae import VAE

    return Registry("model.family", {"gan": GAN, "vae": VAE, "classifier": Classifier})


@functools.cache
def dataset_registry() -> Registry:
    from genlab.data.images import CelebADataModule, FolderDataModule, TorchvisionDataModule
    from genlab.data.stacked_mnist import StackedMNISTDataModule
    from genlab.data.synthetic import GaussianMixtureDataModule, ShapesDataModule

    return Registry(
        "dataset.name",
        {
            "mnist": TorchvisionDataModule,
            "fashion_mnist": TorchvisionDataModule,
            "cifar10": TorchvisionDataModule,
            "celeba": CelebADataModule,
            "folder": FolderDataModule,
            "shapes": ShapesDataModule,
            "stacked_mnist": StackedMNISTDataModule,
            "ring": GaussianMixtureDataModule,
            "grid": GaussianMixtureDataModule,
        },
    )

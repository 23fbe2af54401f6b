"""Datasets: one LightningDataModule per ``configs/dataset/*.yaml``, looked up by name in :data:`DATASETS`."""

from genlab.config.registry import Registry
from genlab.data.images import CelebADataModule, FolderDataModule, TorchvisionDataModule
from genlab.data.loader import TensorBatches
from genlab.data.stacked_mnist import StackedMNISTDataModule
from genlab.data.synthetic import GaussianMixtureDataModule, ShapesDataModule

DATASETS: Registry = Registry(
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

__all__ = ["DATASETS", "TensorBatches"]

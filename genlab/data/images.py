"""Real image datasets: MNIST, Fashion-MNIST, CIFAR-10 (in memory), CelebA and image folders (streamed).

The torchvision datasets are opened with torchvision's own classes (and download code), decoded
once into a uint8 tensor, resized in one batched op and cached under ``{data_dir}/genlab_cache``.
Every way the files can be missing or broken becomes ONE :class:`~genlab.utils.errors.DataError` line
saying what is missing and where to put it.
"""

from __future__ import annotations

import os
import pickle
import socket
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from genlab.data.cache import cache_path, load_or_build
from genlab.data.datamodule import (
    ImageDataConfig,
    InMemoryDataModule,
    StreamingDataModule,
    canonical_split,
)
from genlab.utils.errors import ConfigError, DataError

DOWNLOAD_TIMEOUT_S = 30  # a blackholed network fails the download instead of hanging the run
RESIZE_CHUNK = 4096
# what torchvision raises for missing, undownloadable or corrupt files (URLError is an OSError)
READ_ERRORS = (
    RuntimeError,
    OSError,
    EOFError,
    ValueError,
    pickle.UnpicklingError,
    zlib.error,
    tarfile.TarError,
)


@contextmanager
def download_timeout(seconds: float = DOWNLOAD_TIMEOUT_S) -> Iterator[None]:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def first_line(err: BaseException, limit: int = 160) -> str:
    text = str(err).strip().splitlines()
    line = text[0] if text else type(err).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def missing_message(title: str, where: Path, what: str, download: bool) -> str:
    if download:
        return (
            f"{title} not found under {where} and download failed (offline?): "
            f"place {what} there, or rerun with network access"
        )
    return (
        f"{title} not found under {where} and dataset.download=false: "
        f"place {what} there, or set dataset.download=true (needs network)"
    )


def corrupt_message(title: str, where: Path, what: str, err: BaseException) -> str:
    return (
        f"{title} files under {where} are corrupt or incomplete ({first_line(err)}): "
        f"replace them with fresh copies of {what}, or delete them and rerun with dataset.download=true and network"
    )


# ---- batched uint8 image ops (one op per chunk, never a per-image PIL loop) ---------------------
def resize_uint8(images: Tensor, size: int) -> Tensor:
    """Antialiased resize of a uint8 (N, C, H, W) batch to ``size`` x ``size``."""
    if tuple(images.shape[-2:]) == (size, size):
        return images
    chunks = [TF.resize(c, [size, size], antialias=True) for c in images.split(RESIZE_CHUNK)]
    return torch.cat(chunks)


def convert_channels(images: Tensor, channels: int) -> Tensor:
    """uint8 (N, C, H, W) -> ``channels`` channels (gray -> RGB by repetition, RGB -> gray by luma)."""
    if images.shape[1] == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    return torch.cat([TF.rgb_to_grayscale(c) for c in images.split(RESIZE_CHUNK)])


# ---- torchvision in-memory datasets -----------------------------------------------------------
@dataclass(frozen=True)
class TorchvisionSource:
    """One torchvision dataset: its class, where its files live and how to tell the user to fix them."""

    title: str
    tv_class: str
    subdir: str  # relative to data_dir: where the user puts the files
    files: tuple[str, ...]  # any of these present means "there but broken", none means "missing"
    what: str
    native_size: int
    native_channels: int
    num_classes: int

    def open(self, root: Path, train: bool, download: bool) -> Any:
        cls = getattr(torchvision.datasets, self.tv_class)
        # download=false but the original archives are there and pass their MD5 check: torchvision's
        # "download" then only unpacks them and makes no network request
        unpack = not download and archives_verified(cls, root)
        try:
            with download_timeout():
                return cls(str(root), train=train, download=download or unpack)
        except READ_ERRORS as e:
            where = root / self.subdir
            present = any((where / f).exists() for f in self.files)
            if present:
                raise DataError(corrupt_message(self.title, where, self.what, e)) from e
            raise DataError(missing_message(self.title, where, self.what, download)) from e


def archives_verified(cls: type, root: Path) -> bool:
    """Whether every archive torchvision would download for ``cls`` is already under ``root``, intact."""
    from torchvision.datasets.utils import check_integrity

    resources = getattr(cls, "resources", None)  # MNIST family: [(filename, md5), ...] in <root>/<Class>/raw
    if resources:
        raw = Path(root) / cls.__name__ / "raw"
        return all(check_integrity(str(raw / name), md5) for name, md5 in resources)
    if hasattr(cls, "tgz_md5"):  # CIFAR-10: one tarball in <root>
        return check_integrity(str(Path(root) / cls.filename), cls.tgz_md5)
    return False


_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_MNIST_WHAT = "the four .gz files (" + ", ".join(f + ".gz" for f in _MNIST_FILES) + ")"

SOURCES = {
    "mnist": TorchvisionSource(
        "MNIST",
        "MNIST",
        "MNIST/raw",
        _MNIST_FILES + tuple(f + ".gz" for f in _MNIST_FILES),
        _MNIST_WHAT,
        28,
        1,
        10,
    ),
    "fashion_mnist": TorchvisionSource(
        "Fashion-MNIST",
        "FashionMNIST",
        "FashionMNIST/raw",
        _MNIST_FILES + tuple(f + ".gz" for f in _MNIST_FILES),
        _MNIST_WHAT,
        28,
        1,
        10,
    ),
    "cifar10": TorchvisionSource(
        "CIFAR-10",
        "CIFAR10",
        ".",
        ("cifar-10-python.tar.gz", "cifar-10-batches-py"),
        "cifar-10-python.tar.gz (or its extracted cifar-10-batches-py/ folder)",
        32,
        3,
        10,
    ),
}


def decode_torchvision(ds: Any) -> dict[str, Tensor]:
    """A torchvision dataset's in-memory arrays -> uint8 (N, C, H, W) + long labels (no PIL)."""
    data = torch.as_tensor(np.asarray(ds.data))
    data = data.unsqueeze(1) if data.ndim == 3 else data.permute(0, 3, 1, 2)
    return {"data": data.contiguous(), "labels": torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)}


def load_torchvision_split(
    source: str, data_dir: str | Path, size: int, split: str, download: bool
) -> dict[str, Tensor]:
    """The split of a torchvision dataset at ``size``, native channels; decoded once, then cached."""
    src, split = SOURCES[source], canonical_split(split)

    def build() -> dict[str, Tensor]:
        tensors = decode_torchvision(src.open(Path(data_dir), train=split == "train", download=download))
        tensors["data"] = resize_uint8(tensors["data"], size)
        return tensors

    path = cache_path(data_dir, source, size, split)
    meta = {"source": source, "size": size, "split": split}
    return load_or_build(path, build, meta, sample_shape=(src.native_channels, size, size))


@dataclass(frozen=True)
class TorchvisionConfig(ImageDataConfig):
    name: str = "mnist"  # mnist | fashion_mnist | cifar10
    download: bool = True  # fetch the files when missing (needs network); false: only use what is there
    val_split: str = "test"  # test: the official test split; train: validate on the training images

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.name not in SOURCES:
            raise ConfigError(f"dataset.name={self.name!r} is not known; allowed: {', '.join(SOURCES)}")
        if self.val_split not in ("test", "train"):
            raise ConfigError(f"dataset.val_split={self.val_split!r} is not known; allowed: test, train")


class TorchvisionDataModule(InMemoryDataModule):
    """MNIST / Fashion-MNIST / CIFAR-10: the train split trains, the test split validates and evaluates."""

    config_class = TorchvisionConfig

    @classmethod
    def native_image_size(cls, config: TorchvisionConfig) -> int:
        return SOURCES[config.name].native_size

    @classmethod
    def native_channels(cls, config: TorchvisionConfig) -> int:
        return SOURCES[config.name].native_channels

    @classmethod
    def class_count(cls, config: TorchvisionConfig) -> int:
        return SOURCES[config.name].num_classes

    def load_split(self, split: str) -> dict[str, Tensor]:
        split = canonical_split(split)
        source_split = self.config.val_split if split == "test" else "train"
        tensors = load_torchvision_split(
            self.config.name, self.config.data_dir, self.image_size, source_split, self.config.download
        )
        return {"data": convert_channels(tensors["data"], self.channels), "labels": tensors["labels"]}


# ---- streamed datasets (CelebA, folders): PIL decoding in DataLoader workers -----------------------
class PilToUint8:
    """PIL image -> uint8 (C, H, W): RGB/grayscale, resize the short side, center crop (picklable)."""

    def __init__(self, size: int, channels: int, crop: int | None = None) -> None:
        self.mode = "L" if channels == 1 else "RGB"
        steps = [v2.CenterCrop(crop)] if crop else []
        self.pipeline = v2.Compose(
            [*steps, v2.Resize(size, antialias=True), v2.CenterCrop(size), v2.PILToTensor()]
        )

    def __call__(self, img: Image.Image) -> Tensor:
        return self.pipeline(img.convert(self.mode))


class ImageFiles(Dataset):
    """A list of image files -> ``(uint8 (C, H, W), -1)``; an unreadable file is one DataError line."""

    def __init__(self, files: list[Path], transform: PilToUint8) -> None:
        self.files, self.transform = files, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        path = self.files[i]
        try:
            with Image.open(path) as img:
                return self.transform(img), -1
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise DataError(f"cannot read image {path} ({first_line(e)}): remove or replace that file") from e


class UnlabeledImages(Dataset):
    """A torchvision image dataset -> ``(uint8 (C, H, W), -1)``; unreadable files become DataError."""

    def __init__(self, ds: Any, where: Path) -> None:
        self.ds, self.where = ds, where

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        try:
            return self.ds[i][0], -1
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise DataError(
                f"cannot read an image under {self.where} ({first_line(e)}): replace that file"
            ) from e


@dataclass(frozen=True)
class CelebAConfig(ImageDataConfig):
    name: str = "celeba"
    channels: int | None = 3
    download: bool = True  # fetch the files when missing (needs network); false: only use what is there
    crop_size: int = 178  # center crop of the 178x218 aligned faces before resizing (DCGAN convention)
    val_split: str = "test"  # CelebA's official valid or test partition
    num_workers: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.val_split not in ("valid", "test"):
            raise ConfigError(f"dataset.val_split={self.val_split!r} is not known; allowed: valid, test")
        if self.crop_size <= 0:
            raise ConfigError(f"dataset.crop_size={self.crop_size} must be > 0 (178 keeps the whole face)")


CELEBA_WHAT = (
    "img_align_celeba/ (unzipped img_align_celeba.zip) and list_eval_partition.txt, list_attr_celeba.txt, "
    "identity_CelebA.txt, list_bbox_celeba.txt, list_landmarks_align_celeba.txt"
)


class CelebADataModule(StreamingDataModule):
    """torchvision CelebA (aligned faces), center-cropped and resized; 64x64 by default."""

    config_class = CelebAConfig
    default_size = 64

    @classmethod
    def native_channels(cls, config: ImageDataConfig) -> int:
        return 3

    def make_dataset(self, split: str) -> Dataset:
        split = canonical_split(split)
        root, download = Path(self.config.data_dir), self.config.download
        where = root / "celeba"
        transform = PilToUint8(self.image_size, self.channels, crop=self.config.crop_size)
        try:
            with download_timeout():
                ds = torchvision.datasets.CelebA(
                    str(root),
                    split="train" if split == "train" else self.config.val_split,
                    target_type=[],
                    transform=transform,
                    download=download,
                )
        except READ_ERRORS as e:
            if (where / "img_align_celeba").is_dir():
                raise DataError(corrupt_message("CelebA", where, CELEBA_WHAT, e)) from e
            message = missing_message("CelebA", where, CELEBA_WHAT, download)
            if download:
                message += " (torchvision downloads CelebA from Google Drive with the gdown package)"
            raise DataError(message) from e
        return UnlabeledImages(ds, where / "img_align_celeba")


@dataclass(frozen=True)
class FolderConfig(ImageDataConfig):
    name: str = "folder"
    path: str | None = None  # directory of images; subdirectories are searched too
    channels: int | None = 3
    val_fraction: float = 0.05  # share of the images held out for validation (seeded split)
    num_workers: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.path:
            raise ConfigError(
                "dataset.path is not set: pass dataset.path=/dir/with/images for dataset=folder"
            )
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"dataset.val_fraction={self.val_fraction} must be in [0, 1)")


def list_images(root: Path) -> list[Path]:
    """All image files under ``root`` (recursively, sorted); DataError when there are none."""
    if not root.exists():
        raise DataError(f"dataset.path={root} does not exist: point dataset.path at a directory of images")
    if not root.is_dir():
        raise DataError(
            f"dataset.path={root} is not a directory: point dataset.path at a directory of images"
        )
    if not os.access(root, os.R_OK | os.X_OK):
        raise DataError(f"dataset.path={root} is not readable (permission denied): fix its permissions")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMG_EXTENSIONS and p.is_file())
    if not files:
        raise DataError(
            f"no images found under {root}: put image files ({', '.join(IMG_EXTENSIONS[:4])}, ...) there "
            f"(subfolders are searched) or fix dataset.path"
        )
    return files


class FolderDataModule(StreamingDataModule):
    """Any directory tree of images, resized (short side) and center-cropped to ``image_size``; RGB or gray."""

    config_class = FolderConfig
    default_size = 64
    checked_files = 16  # decoded up front so a folder of broken files fails before training starts

    @classmethod
    def native_channels(cls, config: ImageDataConfig) -> int:
        return 3

    @cached_property
    def files(self) -> dict[str, list[Path]]:
        """The image files of each split: a seeded hold-out of ``val_fraction`` of the sorted listing."""
        files = list_images(Path(self.config.path).expanduser())
        order = torch.randperm(len(files), generator=torch.Generator().manual_seed(self.config.seed)).tolist()
        n_val = min(round(len(files) * self.config.val_fraction), len(files) - 1)
        if n_val == 0:  # too few images to hold any out: validate on the training images
            return {"train": files, "test": files}
        return {
            "train": [files[i] for i in sorted(order[n_val:])],
            "test": [files[i] for i in sorted(order[:n_val])],
        }

    def make_dataset(self, split: str) -> Dataset:
        ds = ImageFiles(self.files[canonical_split(split)], PilToUint8(self.image_size, self.channels))
        for i in range(min(self.checked_files, len(ds))):
            ds[i]
        return ds

"""The shared base of every genlab dataset: typed config, data spec, device placement, batching.

Two ways to feed batches, one per dataset size:

* :class:`InMemoryDataModule` (MNIST, CIFAR-10, shapes, ring, ...): the split is one tensor
  (uint8 images or float vectors), decoded once, optionally living on the training device;
  batches are index slices plus one vectorized uint8 -> value-range transform
  (:class:`~genlab.data.loader.TensorBatches`).
* :class:`StreamingDataModule` (CelebA, image folders): a map-style dataset decoded by
  DataLoader workers (pinned memory, persistent workers); the value-range transform runs once
  per batch in the collate function.

Both yield ``(x, y)``: ``x`` float in ``spec.value_range``, ``y`` long labels (-1 when none).
Splits are ``train`` (training) and ``test`` (validation and evaluation; ``val`` is an alias).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import ClassVar

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, default_collate

from genlab.config.schema import check_at_least, check_choice, require, set_field
from genlab.config.spec import DataSpec
from genlab.data.loader import TensorBatches
from genlab.utils.errors import ConfigError
from genlab.utils.progress import byte_size

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
# the range of image values when neither dataset.value_range nor the model asks for one
DEFAULT_VALUE_RANGE = (0.0, 1.0)
ON_DEVICE_FRACTION = 0.25  # on_device=auto: the dataset may take at most this share of free device memory


def canonical_split(split: str) -> str:
    split = {"val": "test", "validation": "test"}.get(split, split)
    if split not in SPLITS:
        raise ConfigError(f"split={split!r} is not known; allowed: train, test (val)")
    return split


def split_seed(seed: int, split: str) -> int:
    """Distinct, deterministic seeds for the train and test split of generated datasets."""
    return 2 * int(seed) + SPLITS.index(canonical_split(split))


# ---- typed configs -----------------------------------------------------------------------------
# the dataset keys a resumed run may change (where the files are and how they are fed); the rest define the data
RESUME_MUTABLE = ("data_dir", "download", "on_device", "num_workers")


@dataclass(frozen=True)
class DataConfig:
    """Keys every ``configs/dataset/*.yaml`` has; ``name`` is the dataset's registry key."""

    name: str = ""  # the dataset's registry name (set by dataset=<option>)
    # where datasets and their caches live: the same default as configs/paths/default.yaml
    data_dir: str = field(default_factory=lambda: os.environ.get("GENLAB_DATA_DIR", "data"))
    batch_size: int = 128  # GLOBAL: divided by the trainer's world size
    seed: int = 0  # seeds the dataset's own randomness (generation, splits, binarization)
    on_device: str = "auto"  # auto | true | false: keep the whole split on the training device
    num_workers: int = 0  # DataLoader workers (streaming datasets only)

    def __post_init__(self) -> None:
        set_field(self, "on_device", str(self.on_device).lower())
        check_choice("dataset.on_device", self.on_device, ("auto", "true", "false"))
        check_at_least("dataset.batch_size", self.batch_size, 1, 128)
        check_at_least("dataset.num_workers", self.num_workers, 0, 4)
        require(
            bool(str(self.data_dir).strip()), "paths.data_dir is empty; set it to a directory (e.g. data)"
        )

    @property
    def resume_fixed(self) -> tuple[str, ...]:
        return tuple(k for k in self.__dataclass_fields__ if k not in RESUME_MUTABLE)


@dataclass(frozen=True)
class ImageDataConfig(DataConfig):
    """Keys of every image dataset. ``null`` image_size / value_range are resolved from the model's needs."""

    image_size: int | None = None  # pixels per side; null: the native size, or the next one the net makes
    value_range: list[float] | None = None  # [lo, hi] of pixel values; null: what the model expects
    channels: int | None = None  # 1 (grayscale) or 3 (RGB); null: the dataset's native channels

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.image_size is not None:
            check_at_least("dataset.image_size", self.image_size, 4, 32)
        if self.channels is not None:
            check_choice("dataset.channels", self.channels, (1, 3))
        if self.value_range is not None:
            vr = [float(v) for v in self.value_range]
            require(
                len(vr) == 2 and vr[0] < vr[1],
                f"dataset.value_range={list(self.value_range)} must be [lo, hi] with lo < hi, e.g. [-1, 1] or [0, 1]",
            )
            set_field(self, "value_range", vr)


def per_process_batch(batch_size: int, world: int) -> int:
    """Each of ``world`` processes' share of the global ``dataset.batch_size``; ConfigError unless it splits
    evenly."""
    if batch_size % world:
        raise ConfigError(
            f"dataset.batch_size={batch_size} is global and must divide evenly over the {world} processes "
            f"(trainer.devices x trainer.num_nodes); use a multiple of {world}, e.g. "
            f"dataset.batch_size={(batch_size // world + 1) * world}"
        )
    return batch_size // world


# ---- the uint8 -> value range transform (one op per batch) --------------------------------------
class ToValueRange:
    """uint8 images in [0, 255] -> float in [lo, hi]; float data passes through unchanged."""

    def __init__(self, value_range: tuple[float, float] | None) -> None:
        self.lo, self.hi = value_range if value_range is not None else DEFAULT_VALUE_RANGE
        self.scale = (self.hi - self.lo) / 255.0

    def __call__(self, x: Tensor) -> Tensor:
        if x.dtype != torch.uint8:
            return x
        return x.to(torch.float32).mul_(self.scale).add_(self.lo)


class CollateToRange:
    """DataLoader collate: stack uint8 samples, then ONE vectorized value-range transform."""

    def __init__(self, value_range: tuple[float, float] | None) -> None:
        self.transform = ToValueRange(value_range)

    def __call__(self, samples: list) -> tuple[Tensor, Tensor]:
        x, y = default_collate(samples)
        return self.transform(x), y.long()


def non_empty(loader, dm: GenDataModule):
    """A training loader with no full batch would "train" zero steps and report success: refuse it."""
    if len(loader) == 0:
        per = " per process" if dm.world_size > 1 else ""
        raise ConfigError(
            f"dataset.batch_size={dm.config.batch_size} is larger than the training split{per} "
            f"(no full batch); lower dataset.batch_size or add data"
        )
    return loader


# ---- the base datamodule -----------------------------------------------------------------------
class GenDataModule(pl.LightningDataModule):
    """Base of all genlab datasets: ``Cls(config, spec)``.

    ``spec`` is the resolved data spec of a run (image size and value range chosen for its model); without
    one the dataset's native spec is used. Subclasses set ``config_class`` and describe their native data
    through ``native_image_size``, ``native_channels`` and ``class_count``; vector datasets override
    ``native_spec``.
    """

    config_class: ClassVar[type[DataConfig]] = DataConfig
    # images generated or decoded at a size of the user's choosing: null image_size means this one
    default_size: ClassVar[int | None] = None

    def __init__(self, config: DataConfig, spec: DataSpec | None = None) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} takes a {self.config_class.__name__}")
        self.config = config
        self.spec = spec if spec is not None else self.native_spec(config)
        self.modes: Tensor | None = None  # mixture centres (ring/grid only)
        self.mode_std: float | None = None
        self.device = torch.device("cpu")
        self.rank, self.world_size = 0, 1

    # ---- config-time contract ------------------------------------------------------------------
    @classmethod
    def native_image_size(cls, config: DataConfig) -> int | None:
        """The size images have without resizing (None for vector datasets)."""
        if cls.default_size is None:
            return None
        return config.image_size or cls.default_size

    @classmethod
    def native_channels(cls, config: DataConfig) -> int:
        return 1

    @classmethod
    def class_count(cls, config: DataConfig) -> int | None:
        """Number of label classes (None: unlabeled)."""
        return None

    @classmethod
    def split_sizes(cls, config: DataConfig) -> dict[str, int] | None:
        """Samples in each split when known from the config alone (generated datasets), else None."""
        n_train, n_test = getattr(config, "n_train", None), getattr(config, "n_test", None)
        return None if n_train is None or n_test is None else {"train": n_train, "test": n_test}

    @classmethod
    def memory_bytes(cls, config: DataConfig, spec: DataSpec) -> int | None:
        """Host memory the decoded splits take, when known from the config alone."""
        return None

    @classmethod
    def native_spec(cls, config: DataConfig) -> DataSpec:
        """The data as configured, with the dataset's own defaults for what is left on auto."""
        size = config.image_size or cls.native_image_size(config)
        channels = config.channels or cls.native_channels(config)
        vr = tuple(config.value_range) if config.value_range is not None else DEFAULT_VALUE_RANGE
        return DataSpec((channels, size, size), vr, cls.class_count(config), config.name)

    @property
    def num_classes(self) -> int | None:
        return self.spec.num_classes

    @property
    def value_range(self) -> tuple[float, float] | None:
        return self.spec.value_range

    @property
    def image_size(self) -> int:
        return int(self.spec.image_size)

    @property
    def channels(self) -> int:
        return self.spec.channels

    @property
    def transform(self) -> ToValueRange:
        return ToValueRange(self.value_range)

    # ---- runtime placement -----------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Take device, rank and world size from the trainer (cpu / 0 / 1 without one)."""
        trainer = self.trainer
        if trainer is not None:
            self.device = trainer.strategy.root_device
            self.rank, self.world_size = int(trainer.global_rank), int(trainer.world_size)
        self.local_batch_size()  # fail early on a global batch that does not split evenly

    def local_batch_size(self) -> int:
        return per_process_batch(self.config.batch_size, self.world_size)

    def real_samples(self, n: int, split: str = "test", generator: torch.Generator | None = None) -> Tensor:
        """``n`` real samples in data space (the value range), as a CPU tensor."""
        return self.real_labelled(n, split, generator)[0]

    def real_labelled(
        self, n: int, split: str = "test", generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """The samples :meth:`real_samples` draws with the same generator, and their labels (-1: none)."""
        raise NotImplementedError

    def labels(self, split: str = "test") -> Tensor:
        raise NotImplementedError

    @staticmethod
    def _pick(n: int, total: int, generator: torch.Generator | None) -> Tensor:
        if n <= total:
            return torch.randperm(total, generator=generator)[:n]
        return torch.randint(total, (n,), generator=generator)


class InMemoryDataModule(GenDataModule):
    """A dataset that fits in memory: each split is one tensor, batches are slices of it."""

    @classmethod
    def memory_bytes(cls, config: DataConfig, spec: DataSpec) -> int | None:
        sizes = cls.split_sizes(config)
        if sizes is None:
            return None
        per_sample = spec.dim * (1 if spec.is_image else 4)  # uint8 images, float32 vectors
        return sum(sizes.values()) * per_sample

    def __init__(self, config: DataConfig, spec: DataSpec | None = None) -> None:
        super().__init__(config, spec)
        self._splits: dict[str, dict[str, Tensor]] = {}

    def load_split(self, split: str) -> dict[str, Tensor]:
        """``{"data": uint8 (N, C, H, W) or float (N, D), "labels": long (N,)}`` at the configured size.

        Subclasses decode (and cache) here; it is called once per split and process.
        """
        raise NotImplementedError

    def prepare_data(self) -> None:
        # runs on one process per node before setup(): downloads and cache files are written once
        for split in SPLITS:
            self.load_split(split)

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        for split in SPLITS:  # splits loaded before a trainer was attached move to its device now
            self._splits[split] = self._placed(self._split(split))

    def _split(self, split: str) -> dict[str, Tensor]:
        split = canonical_split(split)
        if split not in self._splits:
            self._splits[split] = self._placed(self.load_split(split))
        return self._splits[split]

    def _placed(self, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        """Data and labels on the placement device; extras (e.g. the factors of `shapes`) stay on the cpu."""
        device = self._placement(tensors["data"])
        return {**tensors, "data": tensors["data"].to(device), "labels": tensors["labels"].long().to(device)}

    def _placement(self, data: Tensor) -> torch.device:
        mode, device = self.config.on_device, self.device
        if device.type == "cpu" or mode == "false":
            return torch.device("cpu")
        if mode == "true":
            return device
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            fits = data.nbytes <= ON_DEVICE_FRACTION * free
            if not fits:
                log.info(
                    "dataset %s (%s) stays on cpu: too large for the device",
                    self.config.name,
                    byte_size(data.nbytes),
                )
            return device if fits else torch.device("cpu")
        return torch.device("cpu")

    def _batches(self, split: str, shuffle: bool) -> TensorBatches:
        tensors = self._split(split)
        return TensorBatches(
            tensors["data"],
            tensors["labels"],
            batch_size=self.local_batch_size(),
            transform=self.transform,
            shuffle=shuffle,
            drop_last=shuffle,
            seed=self.config.seed,
            rank=self.rank,
            world_size=self.world_size,
        )

    def train_dataloader(self) -> TensorBatches:
        return non_empty(self._batches("train", shuffle=True), self)

    def val_dataloader(self) -> TensorBatches:
        return self._batches("test", shuffle=False)

    def test_dataloader(self) -> TensorBatches:
        return self._batches("test", shuffle=False)

    def real_labelled(
        self, n: int, split: str = "test", generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        tensors = self._split(split)
        data = tensors["data"]
        idx = self._pick(n, len(data), generator).to(data.device)
        return self.transform(data[idx]).cpu(), tensors["labels"][idx].cpu()

    def labels(self, split: str = "test") -> Tensor:
        return self._split(split)["labels"].cpu()


class StreamingDataModule(GenDataModule):
    """A dataset too large for memory: decoded per sample by DataLoader workers."""

    def __init__(self, config: DataConfig, spec: DataSpec | None = None) -> None:
        super().__init__(config, spec)
        self._datasets: dict[str, Dataset] = {}

    def make_dataset(self, split: str) -> Dataset:
        """A map-style dataset of ``(uint8 (C, H, W) tensor, int label)`` at the configured size."""
        raise NotImplementedError

    def prepare_data(self) -> None:
        for split in SPLITS:
            self._dataset(split)

    def _dataset(self, split: str) -> Dataset:
        split = canonical_split(split)
        if split not in self._datasets:
            self._datasets[split] = self.make_dataset(split)
        return self._datasets[split]

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        workers = self.config.num_workers
        return DataLoader(
            self._dataset(split),
            batch_size=self.local_batch_size(),
            shuffle=shuffle,
            drop_last=shuffle,
            num_workers=workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=workers > 0,
            collate_fn=CollateToRange(self.value_range),
            generator=torch.Generator().manual_seed(self.config.seed),
        )

    def train_dataloader(self) -> DataLoader:
        return non_empty(self._loader("train", shuffle=True), self)

    def val_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def real_labelled(
        self, n: int, split: str = "test", generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        ds = self._dataset(split)
        items = [ds[int(i)] for i in self._pick(n, len(ds), generator)]
        labels = torch.tensor([int(label) for _, label in items], dtype=torch.long)
        return self.transform(torch.stack([x for x, _ in items])), labels

    def labels(self, split: str = "test") -> Tensor:
        return torch.full((len(self._dataset(split)),), -1, dtype=torch.long)

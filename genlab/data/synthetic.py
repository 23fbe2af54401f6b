"""Built-in datasets that need no download: procedural shapes and the 2D Gaussian mixtures (ring, grid).

``shapes`` (the project's default dataset) renders squares, ellipses and triangles at random
scale, rotation and position, in the spirit of dSprites (Matthey et al., 2017). Rendering is
vectorized: every pixel of a chunk of images is tested against its shape's signed distance on a
shared coordinate grid, with a one-pixel soft edge for anti-aliasing.

``ring`` and ``grid`` are the mode-collapse benchmarks of the GAN literature:

* ring: 8 Gaussians with means evenly spaced on a circle of radius 2 and std 0.02 (Metz et al.,
  Unrolled GANs, 2017; VEEGAN, Srivastava et al., 2017).
* grid: 25 Gaussians with means (-4 + 2i, -4 + 2j), i, j in 0..4, and variance 0.0025, i.e.
  std 0.05 (PacGAN, Lin et al., 2018).

Labels are the mode index (ring/grid) or the shape class (shapes).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from genlab.config.schema import set_field
from genlab.config.spec import DataSpec
from genlab.data.cache import cache_path, load_or_build
from genlab.data.datamodule import (
    DataConfig,
    ImageDataConfig,
    InMemoryDataModule,
    canonical_split,
    split_seed,
)
from genlab.utils.errors import ConfigError

# ---- shapes ------------------------------------------------------------------------------------
SHAPES = ("square", "ellipse", "triangle")
SQUARE_HALF_SIDE = 0.7  # shapes live in a unit circle (circumradius ~1) before scaling
ELLIPSE_AXES = (1.0, 0.5)  # elongated, so rotation is visible
TRIANGLE_INRADIUS = 0.5  # equilateral triangle with circumradius 1
RENDER_CHUNK = 256  # small chunks stay in cache: ~10x faster than large ones on CPU


def sample_shape_factors(
    n: int,
    generator: torch.Generator,
    num_shapes: int = len(SHAPES),
    scale: tuple[float, float] = (0.35, 0.7),
    color: bool = False,
    rotation: tuple[float, float] = (0.0, 360.0),
) -> dict[str, Tensor]:
    """Independent uniform factors per image; positions keep the whole shape inside the image.

    ``shape``: index into the shape list; ``scale``: circumradius as a fraction of the half-width;
    ``rotation``: radians, uniform in the ``rotation`` range given in DEGREES (default: all of [0, 2 pi)); ``pos_x``, ``pos_y``: centre in [-1, 1] image coordinates
    (x to the right, y down); ``color`` (RGB only): per-channel intensity in [0.25, 1].
    """
    u = torch.rand(n, 4, generator=generator)
    s = scale[0] + (scale[1] - scale[0]) * u[:, 0]
    factors = {
        "shape": torch.randint(num_shapes, (n,), generator=generator),
        "scale": s,
        "rotation": torch.deg2rad(rotation[0] + (rotation[1] - rotation[0]) * u[:, 1]),
        "pos_x": (2 * u[:, 2] - 1) * (1 - s),
        "pos_y": (2 * u[:, 3] - 1) * (1 - s),
    }
    if color:
        factors["color"] = 0.25 + 0.75 * torch.rand(n, 3, generator=generator)
    return factors


def _distance_px(kind: str, f: dict[str, Tensor], size: int) -> Tensor:
    """Signed distance in pixels (negative inside) from every pixel to each image's shape: (B, size, size).

    Any linear function of the shape's local coordinates is ``cos(theta + t) dx + sin(theta + t) dy``,
    a sum of a (B, 1, size) and a (B, size, 1) tensor: one full-size op per projection.
    """
    pixel = 2.0 / size
    axis = (
        (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    ) / pixel  # pixel centres, in pixels
    x0, y0, theta = f["pos_x"] / pixel, f["pos_y"] / pixel, f["rotation"]
    radius = (f["scale"] / pixel).view(-1, 1, 1)  # circumradius in pixels

    def proj(t: float, k: float = 1.0) -> Tensor:
        c, s = k * torch.cos(theta + t), k * torch.sin(theta + t)
        along_x = c.view(-1, 1, 1) * axis.view(1, 1, -1) - (c * x0 + s * y0).view(-1, 1, 1)  # (B, 1, size)
        along_y = s.view(-1, 1, 1) * axis.view(1, -1, 1)  # (B, size, 1)
        return along_x + along_y

    if kind == "square":
        return torch.maximum(proj(0).abs_(), proj(math.pi / 2).abs_()).sub_(SQUARE_HALF_SIDE * radius)
    if kind == "ellipse":  # first-order distance: (normalized radius - 1) * minor axis
        a, b = ELLIPSE_AXES
        return torch.hypot(proj(0, b / a), proj(math.pi / 2)).sub_(b * radius)
    # triangle: the largest projection onto the three edge normals (up, lower right, lower left)
    edges = [proj(t) for t in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    return torch.maximum(torch.maximum(edges[0], edges[1]), edges[2]).sub_(TRIANGLE_INRADIUS * radius)


def render_shapes(factors: dict[str, Tensor], size: int, shape_ids: Tensor | None = None) -> Tensor:
    """Rasterize images from their factors: uint8 (N, C, size, size), C = 3 with ``color`` else 1.

    ``shape_ids`` maps the factor ``shape`` (an index into the configured shape list) to the
    canonical index in ``SHAPES``; identity by default. Pixels get a one-pixel soft edge.
    """
    canon = factors["shape"] if shape_ids is None else shape_ids[factors["shape"]]
    channels = 3 if "color" in factors else 1
    out = torch.empty(len(canon), channels, size, size, dtype=torch.uint8)
    for k, kind in enumerate(SHAPES):
        for idx in (canon == k).nonzero().flatten().split(RENDER_CHUNK):
            f = {name: v[idx] for name, v in factors.items()}
            coverage = _distance_px(kind, f, size).neg_().add_(0.5).clamp_(0, 1).unsqueeze(1)
            if "color" in f:
                coverage = coverage * f["color"].view(-1, 3, 1, 1)
            out[idx] = coverage.mul_(255).round_().to(torch.uint8)
    return out


@dataclass(frozen=True)
class ShapesConfig(ImageDataConfig):
    name: str = "shapes"
    channels: int | None = 1  # 3: each shape gets a random colour (an extra `color` factor)
    n_train: int = 20000  # training images
    n_test: int = 2000  # test images
    shapes: list[str] = field(default_factory=lambda: list(SHAPES))  # which of square, ellipse, triangle
    scale_min: float = 0.35  # smallest shape size, as a fraction of the image side
    scale_max: float = 0.7  # largest shape size, as a fraction of the image side
    rotation_min: float = 0.0  # degrees, counter-clockwise; [0, 360] covers every orientation
    rotation_max: float = 360.0  # degrees; each rotation is uniform in [rotation_min, rotation_max]

    def __post_init__(self) -> None:
        super().__post_init__()
        set_field(self, "shapes", list(self.shapes))
        unknown = [s for s in self.shapes if s not in SHAPES]
        if unknown or not self.shapes or len(set(self.shapes)) != len(self.shapes):
            raise ConfigError(
                f"dataset.shapes={self.shapes} must be distinct names from: {', '.join(SHAPES)}"
            )
        if not 0 < self.scale_min <= self.scale_max <= 1:
            raise ConfigError(
                f"dataset.scale_min={self.scale_min}, scale_max={self.scale_max}: need 0 < scale_min <= scale_max <= 1"
            )
        if not 0 <= self.rotation_max - self.rotation_min <= 360:
            raise ConfigError(
                f"dataset.rotation_min={self.rotation_min}, rotation_max={self.rotation_max}: need "
                "rotation_min <= rotation_max <= rotation_min + 360 (degrees)"
            )
        if self.n_train <= 0 or self.n_test <= 0:
            raise ConfigError(f"dataset.n_train={self.n_train} and n_test={self.n_test} must be > 0")


# the config keys that determine the rendered images (and so the cache file's fingerprint)
RECIPE_KEYS = ("seed", "channels", "shapes", "scale_min", "scale_max", "rotation_min", "rotation_max")


class ShapesDataModule(InMemoryDataModule):
    """Procedural shapes, deterministic from ``seed``; ``factors`` holds the generating factors."""

    config_class = ShapesConfig
    default_size = 32

    @classmethod
    def class_count(cls, config: ShapesConfig) -> int:
        return len(config.shapes)

    def load_split(self, split: str) -> dict[str, Any]:
        split, cfg = canonical_split(split), self.config
        n = cfg.n_train if split == "train" else cfg.n_test
        recipe = {k: asdict(cfg)[k] for k in RECIPE_KEYS}
        recipe.update(n=n, size=self.image_size, split=split)
        fingerprint = hashlib.sha1(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]

        def build() -> dict[str, Any]:
            g = torch.Generator().manual_seed(split_seed(cfg.seed, split))
            factors = sample_shape_factors(
                n,
                g,
                len(cfg.shapes),
                (cfg.scale_min, cfg.scale_max),
                self.channels == 3,
                (cfg.rotation_min, cfg.rotation_max),
            )
            shape_ids = torch.tensor([SHAPES.index(s) for s in cfg.shapes])
            images = render_shapes(factors, self.image_size, shape_ids)
            return {"data": images, "labels": factors["shape"].clone(), "factors": factors}

        path = cache_path(cfg.data_dir, cfg.name, self.image_size, split, fingerprint)
        return load_or_build(
            path, build, recipe, sample_shape=(self.channels, self.image_size, self.image_size)
        )

    def factors_of(self, split: str = "train") -> dict[str, Tensor]:
        return self._split(split)["factors"]

    @property
    def factors(self) -> dict[str, Tensor]:
        """Generating factors of the training images (index-aligned with the train split)."""
        return self.factors_of("train")


# ---- 2D Gaussian mixtures ----------------------------------------------------------------------
LAYOUTS = ("ring", "grid")
DEFAULT_STD = {"ring": 0.02, "grid": 0.05}


def ring_modes(k: int = 8, radius: float = 2.0) -> Tensor:
    """``k`` centres evenly spaced on a circle: (radius cos(2 pi i / k), radius sin(2 pi i / k))."""
    angle = 2 * math.pi * torch.arange(k, dtype=torch.float64) / k
    return (radius * torch.stack([angle.cos(), angle.sin()], dim=1)).float()


def grid_modes(side: int = 5, spacing: float = 2.0) -> Tensor:
    """``side`` x ``side`` centres on a square lattice centred at 0: {-4, -2, 0, 2, 4}^2 by default."""
    axis = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    return torch.cartesian_prod(axis, axis)


def sample_mixture(
    modes: Tensor, std: float, n: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """``n`` draws from the equal-weight mixture of N(mode, std^2 I): (points (n, D), mode index (n,))."""
    labels = torch.randint(len(modes), (n,), generator=generator)
    noise = torch.randn(n, modes.shape[1], generator=generator)
    return modes[labels] + std * noise, labels


@dataclass(frozen=True)
class GaussianMixtureConfig(DataConfig):
    name: str = "ring"  # ring | grid
    batch_size: int = 256
    n_train: int = 100000  # training points
    n_test: int = 10000  # test points
    std: float | None = None  # null: the literature value (ring 0.02, grid 0.05)
    num_modes: int = 8  # ring only
    radius: float = 2.0  # ring only

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.name not in LAYOUTS:
            raise ConfigError(f"dataset.name={self.name!r} is not known; allowed: {', '.join(LAYOUTS)}")
        if self.std is not None and not self.std > 0:
            raise ConfigError(f"dataset.std={self.std} must be > 0 (or null for the literature value)")
        if self.num_modes < 2 or not self.radius > 0:
            raise ConfigError(f"dataset.num_modes={self.num_modes} must be >= 2 and radius={self.radius} > 0")
        if self.n_train <= 0 or self.n_test <= 0:
            raise ConfigError(f"dataset.n_train={self.n_train} and n_test={self.n_test} must be > 0")


def mixture_modes(config: GaussianMixtureConfig) -> Tensor:
    return ring_modes(config.num_modes, config.radius) if config.name == "ring" else grid_modes()


class GaussianMixtureDataModule(InMemoryDataModule):
    """2D points from the ring or grid mixture; ``modes`` (K, 2) and ``mode_std`` describe the truth."""

    config_class = GaussianMixtureConfig

    def __init__(self, config: GaussianMixtureConfig, spec: DataSpec | None = None) -> None:
        super().__init__(config, spec)
        self.modes = mixture_modes(config)
        self.mode_std = float(config.std if config.std is not None else DEFAULT_STD[config.name])

    @classmethod
    def native_spec(cls, config: GaussianMixtureConfig) -> DataSpec:
        return DataSpec(
            shape=(2,), value_range=None, num_classes=len(mixture_modes(config)), name=config.name
        )

    def load_split(self, split: str) -> dict[str, Tensor]:
        split = canonical_split(split)
        n = self.config.n_train if split == "train" else self.config.n_test
        g = torch.Generator().manual_seed(split_seed(self.config.seed, split))
        points, labels = sample_mixture(self.modes, self.mode_std, n, g)
        return {"data": points, "labels": labels}

    def prepare_data(self) -> None:  # generated in microseconds: nothing to prepare or cache
        pass

    def real_labelled(
        self, n: int, split: str = "test", generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Fresh draws from the true mixture (unlimited, independent of the stored splits) and their modes."""
        return sample_mixture(self.modes, self.mode_std, n, generator)

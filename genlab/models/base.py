"""What every genlab model shares (typed config, data spec, optimizers) and what every generator adds.

:class:`GenlabModule` is the base of every model family: it is built from its typed config (pythae style:
every key of ``configs/model/<name>.yaml`` is a field of ``config_class``, range-checked in
``__post_init__``), the run's resolved :class:`~genlab.config.spec.DataSpec` and the typed optimizer config.
:class:`GenerativeModule` adds latent sampling and image panels; a family implements ``decode`` (latent ->
data space) plus its training step. Callers ask for capabilities through
:mod:`genlab.models.capabilities`, so callbacks and commands never special-case a family.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.config.spec import DataSpec
from genlab.models.capabilities import Sampler
from genlab.models.optim import OptimizerConfig, build_optimizer, build_scheduler
from genlab.utils.compat import logs_kept_this_step
from genlab.utils.errors import ConfigError

N_FIXED = 64  # size of the fixed latent batch behind every comparable sample grid
CLASS_GRID_COLUMNS = 10  # conditional models: samples per class (row) of the class grid panel
MAX_GRID_CLASSES = 20  # the class grid panel shows at most this many classes (rows)
DECODE_CHUNK = 1000  # latents decoded at once by the grids


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation of latent pairs ``a[i] -> b[i]`` at fractions ``t``: (rows, len(t), dim)."""
    a, b, t = a.unsqueeze(1), b.unsqueeze(1), t.view(1, -1, 1)
    cos = (F.normalize(a, dim=-1) * F.normalize(b, dim=-1)).sum(-1, keepdim=True).clamp(-1 + 1e-6, 1 - 1e-6)
    omega = torch.acos(cos)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


class GenlabModule(pl.LightningModule):
    config_class: ClassVar[type]
    family: ClassVar[str]

    def __init__(self, config: Any, data: DataSpec, optimizer: OptimizerConfig | None = None) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} takes a {self.config_class.__name__}, not {type(config).__name__}"
            )
        if not isinstance(data, DataSpec):
            raise TypeError(f"{type(self).__name__} takes a DataSpec, not {type(data).__name__}")
        self.config = config
        self.spec = data
        self.optim_config = optimizer if optimizer is not None else OptimizerConfig()
        self.check_data(config, data)

    # ---- config-time contract (class methods on the typed config: called before anything is built) ----
    # whether a training step leaves parameters without gradients (DDP must then look for unused ones)
    ddp_unused_parameters: ClassVar[bool] = False

    @classmethod
    def check_training(cls, config, batch_size: int, trainer: Any) -> None:
        """Raise ConfigError when the Trainer arguments (the typed trainer config) or the batch each process
        gets cannot work with this model (called before a run directory exists)."""

    @classmethod
    def supported_image_sizes(cls, config) -> tuple[int, ...] | None:
        """Image sizes the configured network can produce; None means any."""
        return None

    @classmethod
    def expected_value_range(cls, config) -> tuple[float, float] | None:
        """The value range the model expects its image data in (None: any)."""
        return None

    @classmethod
    def supports_vectors(cls, config) -> bool:
        """Whether the configured network takes flat vectors (the 2D datasets)."""
        return False

    @classmethod
    def supports_images(cls, config) -> bool:
        return True

    @classmethod
    def vectors_hint(cls) -> str:
        """How to configure this model for the 2D datasets."""
        return "use model.net=mlp for the 2D datasets"

    @classmethod
    def check_data(cls, config, spec: DataSpec) -> None:
        """Raise ConfigError when this model cannot train on data of this spec."""
        net = getattr(config, "net", "?")
        if spec.is_image:
            if not cls.supports_images(config):
                raise ConfigError(
                    f"model.net={net} takes 2D vectors but dataset {spec.name or ''} has images "
                    f"{tuple(spec.shape)}; use an image network (e.g. model.net=dcgan) or dataset=ring/grid"
                )
            sizes = cls.supported_image_sizes(config)
            if sizes is not None and spec.image_size not in sizes:
                raise ConfigError(
                    f"dataset.image_size={spec.image_size}: model.net={net} can only produce sizes "
                    f"{', '.join(map(str, sizes))}; set dataset.image_size to one of them"
                )
            expected = cls.expected_value_range(config)
            if (
                expected is not None
                and spec.value_range is not None
                and tuple(spec.value_range) != tuple(expected)
            ):
                raise ConfigError(
                    f"dataset.value_range={list(spec.value_range)} but model {cls.family} (net={net}) expects "
                    f"{list(expected)}; set dataset.value_range={list(expected)} or leave it null (auto)"
                )
        elif not cls.supports_vectors(config):
            fix = (
                cls.vectors_hint() if hasattr(config, "net") else f"model={cls.family} needs an image dataset"
            )
            raise ConfigError(
                f"dataset {spec.name or ''} yields {spec.shape[0]}D vectors but model {cls.family} "
                f"(net={net}) takes images; {fix}"
            )

    def is_logging_step(self) -> bool:
        """Whether the trainer keeps this step's metrics (``trainer.log_every_n_steps``). ``self.log`` costs
        about 1 ms per key, a large share of a small model's step: log diagnostics only when they are kept."""
        if self._trainer is None:
            return True
        return logs_kept_this_step(self.trainer)

    # ---- optimization: one optimizer over all parameters (the GAN overrides this) ---------------
    def configure_optimizers(self):
        opt = build_optimizer(self.parameters(), self.optim_config)
        sched = build_scheduler(opt, self.optim_config, self.trainer.max_steps if self._trainer else 0)
        if sched is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    @classmethod
    def optimizer_settings(cls, config, optimizer: OptimizerConfig) -> list[dict[str, Any]]:
        """The configured hyperparameters of each optimizer, in ``configure_optimizers`` order (applied to the
        restored optimizers when a resumed run changes them)."""
        return [optimizer.hyperparameters()]


class GenerativeModule(GenlabModule, Sampler):
    """A model that generates: a latent prior, ``decode``, sample grids and interpolations.

    A class-conditional model (``model.conditional=true``) decodes ``(z, labels)``: ``labels`` is a long tensor
    of classes in ``[0, num_classes)``, one per latent. Every method takes ``labels=None`` and ignores labels when
    the model is unconditional, so callers need not ask. Without labels a conditional model's ``sample`` draws
    uniform random classes (from its generator), ``decode`` cycles through them (0, 1, 2, ...: no random
    numbers drawn, e.g. by the divergence guard's probe during training).
    """

    def __init__(self, config: Any, data: DataSpec, optimizer: OptimizerConfig | None = None) -> None:
        super().__init__(config, data, optimizer)
        # fixed seed: grids are comparable across epochs, resumes and runs; saved in the checkpoint
        g = torch.Generator().manual_seed(1234)
        self.register_buffer("fixed_z", torch.randn(N_FIXED, int(self.config.latent_dim), generator=g))

    @classmethod
    def check_data(cls, config, spec: DataSpec) -> None:
        super().check_data(config, spec)
        if getattr(config, "conditional", False) and not spec.num_classes:
            raise ConfigError(
                f"model.conditional=true needs a labelled dataset, but dataset {spec.name or ''} has no classes; "
                "use one with labels (e.g. dataset=mnist) or model.conditional=false"
            )

    # ---- latent space ------------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return int(self.config.latent_dim)

    @property
    def conditional(self) -> bool:
        return bool(getattr(self.config, "conditional", False))

    @property
    def num_classes(self) -> int | None:
        """The classes a conditional model generates; None when it is unconditional."""
        return int(self.spec.num_classes) if self.conditional else None

    def condition(
        self, labels: Tensor | None, n: int, generator: torch.Generator | None = None, random: bool = False
    ) -> Tensor | None:
        """The ``n`` labels to decode with, on the model's device: None when unconditional; when the model is
        conditional and ``labels`` is None, uniform random classes drawn from ``generator`` (``random``) or the
        classes in turn."""
        if not self.conditional:
            return None
        k = self.num_classes
        if labels is None:
            labels = torch.randint(k, (n,), generator=generator) if random else torch.arange(n) % k
        labels = torch.as_tensor(labels, dtype=torch.long)
        if labels.shape != (n,):
            raise ValueError(f"expected {n} labels, got a tensor of shape {tuple(labels.shape)}")
        if n and (int(labels.min()) < 0 or int(labels.max()) >= k):
            raise ValueError(f"labels must be classes in [0, {k}), got {labels.min()}..{labels.max()}")
        return labels.to(self.device)

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Map latents (and, for a conditional model, their labels) to samples in data space (the dataset's
        value range). EMA weights when enabled."""
        raise NotImplementedError

    def fixed_latents(self) -> Tensor:
        """The latent batch fixed at construction and stored in the checkpoint (comparable grids across resume)."""
        return self.fixed_z

    def prior_latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws from the latent prior, on the model's device: N(0, I) unless a family learns its prior."""
        return torch.randn(n, self.latent_dim, generator=generator).to(self.device)

    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator | None = None, labels: Tensor | None = None
    ) -> Tensor:
        """``n`` samples in data space (of the classes ``labels``, or random ones, when conditional)."""
        z = self.prior_latents(n, generator)
        return self.decode(z, self.condition(labels, n, generator, random=True))

    def decode_chunked(self, z: Tensor, labels: Tensor | None) -> Tensor:
        """``decode`` in chunks of at most DECODE_CHUNK latents."""
        if labels is None:
            return torch.cat([self.decode(part) for part in z.split(DECODE_CHUNK)])
        parts = zip(z.split(DECODE_CHUNK), labels.split(DECODE_CHUNK), strict=True)
        return torch.cat([self.decode(a, b) for a, b in parts])

    @torch.no_grad()
    def class_grid(
        self,
        classes: list[int] | None = None,
        columns: int = CLASS_GRID_COLUMNS,
        z: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """A conditional model's class grid: one row per class (default: the first MAX_GRID_CLASSES classes),
        the same ``columns`` latents (``z``, or drawn from ``generator``) in every row, so a column changes only
        the class. ``len(classes) * columns`` images in [0, 1], row-major."""
        if not self.conditional:
            raise ValueError("a class grid needs a conditional model")
        if classes is None:
            classes = list(range(min(self.num_classes, MAX_GRID_CLASSES)))
        if z is None:
            z = torch.randn(columns, self.latent_dim, generator=generator)
        z = z.to(self.device)
        labels = torch.as_tensor(list(classes), dtype=torch.long).repeat_interleave(len(z))
        labels = self.condition(labels, len(labels))
        return self.to_unit(self.decode_chunked(z.repeat(len(classes), 1), labels))

    # ---- images ------------------------------------------------------------------------------
    def to_unit(self, x: Tensor) -> Tensor:
        """Data space -> [0, 1] (images), for grids, PNGs and metrics."""
        if self.spec.value_range is None:
            return x
        lo, hi = self.spec.value_range
        return ((x.float() - lo) / (hi - lo)).clamp(0, 1)

    @torch.no_grad()
    def interpolation_grid(
        self, rows: int = 8, steps: int = 10, z: Tensor | None = None, labels: Tensor | None = None
    ) -> Tensor:
        """Spherical interpolation between ``rows`` pairs of latents (default: the fixed ones):
        ``rows*steps`` images in [0, 1], row-major. A conditional model keeps one class per row: ``labels``
        (one per row), by default row i -> class i mod num_classes."""
        z = self.fixed_latents() if z is None else z.to(self.device)
        a, b = z[:rows], z[rows : 2 * rows]
        zs = slerp(a, b, torch.linspace(0, 1, steps, device=z.device))
        row_labels = self.condition(labels, rows)
        flat = None if row_labels is None else row_labels.repeat_interleave(steps)
        return self.to_unit(self.decode_chunked(zs.reshape(rows * steps, -1), flat))

    @torch.no_grad()
    def image_panels(self) -> dict[str, tuple[Tensor, int]]:
        """Named image grids to log: name -> (images in [0, 1] as (N, C, H, W), images per row).

        Families extend this (VAE: reconstructions, traversals). Only meaningful for image data. The samples
        of a conditional model are its class grid (one row per class, the same fixed latents in every row).
        """
        z = self.fixed_latents()
        if self.conditional:
            samples = (self.class_grid(z=z[:CLASS_GRID_COLUMNS]), CLASS_GRID_COLUMNS)
        else:
            samples = (self.to_unit(self.decode(z)), int(math.sqrt(len(z))))
        return {"samples": samples, "interpolation": (self.interpolation_grid(), 10)}

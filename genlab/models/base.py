"""What every genlab model shares: typed config, data spec, latent sampling, image panels, RNG state.

A model family subclasses :class:`GenerativeModule`, sets ``config_class`` to its typed config
dataclass (pythae style: every key of ``configs/model/<name>.yaml`` is a field there, checked in
``__post_init__``), and implements ``decode`` (latent -> data space) plus its training step.
Everything that works across families (sampling, grids, ``genlab sample``, evaluation) goes through
the small API below, so callbacks and CLIs never special-case a family.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict
from typing import Any, ClassVar

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.data.spec import DataSpec
from genlab.errors import ConfigError, TrainingDiverged
from genlab.optim import OptimizerConfig, build_optimizer, build_scheduler

N_FIXED = 64  # size of the fixed latent batch behind every comparable sample grid


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation of latent pairs ``a[i] -> b[i]`` at fractions ``t``: (rows, len(t), dim)."""
    a, b, t = a.unsqueeze(1), b.unsqueeze(1), t.view(1, -1, 1)
    cos = (F.normalize(a, dim=-1) * F.normalize(b, dim=-1)).sum(-1, keepdim=True).clamp(-1 + 1e-6, 1 - 1e-6)
    omega = torch.acos(cos)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


class GenerativeModule(pl.LightningModule):
    config_class: ClassVar[type]
    family: ClassVar[str] = "generative"

    def __init__(self, data: DataSpec | dict, optimizer: OptimizerConfig | dict | None = None, **config: Any):
        super().__init__()
        self.spec = DataSpec.from_any(data)
        self.config = self.config_class(**config)
        if optimizer is None:
            optimizer = OptimizerConfig()
        self.optim_config = (
            optimizer if isinstance(optimizer, OptimizerConfig) else OptimizerConfig(**optimizer)
        )
        self.check_data(self.config, self.spec)
        # plain containers only: checkpoints must load with torch.load(weights_only=True)
        self.save_hyperparameters(
            {"data": self.spec.to_dict(), "optimizer": asdict(self.optim_config), **asdict(self.config)},
            logger=False,  # train() logs flat hparams + final metrics once, for TensorBoard's HParams tab
        )
        self._last_losses: dict[str, Tensor] = {}
        if hasattr(self.config, "latent_dim"):
            # fixed seed: grids are comparable across epochs, resumes and runs; saved in the checkpoint
            g = torch.Generator().manual_seed(1234)
            self.register_buffer("fixed_z", torch.randn(N_FIXED, int(self.config.latent_dim), generator=g))

    # ---- config-time contract (class methods: called before anything is built) -------------
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
                "use model.net=mlp for the 2D datasets"
                if hasattr(config, "net")
                else f"model={cls.family} needs an image dataset"
            )
            raise ConfigError(
                f"dataset {spec.name or ''} yields {spec.shape[0]}D vectors but model {cls.family} "
                f"(net={net}) takes images; {fix}"
            )

    # ---- optimization: one optimizer over all parameters (the GAN overrides this) ---------------
    def configure_optimizers(self):
        opt = build_optimizer(self.parameters(), self.optim_config)
        sched = build_scheduler(opt, self.optim_config, self.trainer.max_steps if self._trainer else 0)
        if sched is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ---- latent space ------------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return int(self.config.latent_dim)

    def decode(self, z: Tensor) -> Tensor:
        """Map latents to samples in data space (the dataset's value range). EMA weights when enabled."""
        raise NotImplementedError

    def fixed_latents(self) -> Tensor:
        """The latent batch fixed at construction and stored in the checkpoint (comparable grids across resume)."""
        return self.fixed_z

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples in data space."""
        z = torch.randn(n, self.latent_dim, generator=generator).to(self.device)
        return self.decode(z)

    # ---- images ------------------------------------------------------------------------------
    def to_unit(self, x: Tensor) -> Tensor:
        """Data space -> [0, 1] (images), for grids, PNGs and metrics."""
        if self.spec.value_range is None:
            return x
        lo, hi = self.spec.value_range
        return ((x.float() - lo) / (hi - lo)).clamp(0, 1)

    @torch.no_grad()
    def interpolation_grid(self, rows: int = 8, steps: int = 10, z: Tensor | None = None) -> Tensor:
        """Spherical interpolation between ``rows`` pairs of latents (default: the fixed ones):
        ``rows*steps`` images in [0, 1], row-major."""
        z = self.fixed_latents() if z is None else z.to(self.device)
        a, b = z[:rows], z[rows : 2 * rows]
        zs = slerp(a, b, torch.linspace(0, 1, steps, device=z.device))
        return self.to_unit(self.decode(zs.reshape(rows * steps, -1)))

    @torch.no_grad()
    def image_panels(self) -> dict[str, tuple[Tensor, int]]:
        """Named image grids to log: name -> (images in [0, 1] as (N, C, H, W), images per row).

        Families extend this (VAE: reconstructions, traversals). Only meaningful for image data.
        """
        z = self.fixed_latents()
        return {
            "samples": (self.to_unit(self.decode(z)), int(math.sqrt(len(z)))),
            "interpolation": (self.interpolation_grid(), 10),
        }

    def is_logging_step(self) -> bool:
        """Whether the trainer keeps this step's metrics (``trainer.log_every_n_steps``). ``self.log`` costs
        about 1 ms per key, a large share of a small model's step: log diagnostics only when they are kept."""
        if self._trainer is None:
            return True
        return self.trainer._logger_connector.should_update_logs  # Lightning's own criterion

    # ---- divergence guard --------------------------------------------------------------------
    def watch_losses(self, **losses: Tensor) -> None:
        """Remember this step's losses; they are checked at log cadence and before every checkpoint."""
        self._last_losses = {k: v.detach() for k, v in losses.items()}
        every = max(1, getattr(self.trainer, "log_every_n_steps", 1)) if self._trainer is not None else 1
        if self.global_step % every == 0:
            self.check_finite()

    def check_finite(self) -> None:
        for name, value in self._last_losses.items():
            if not torch.isfinite(value).all():
                ckpt = None
                if self._trainer is not None and self.trainer.checkpoint_callback is not None:
                    ckpt = getattr(self.trainer.checkpoint_callback, "last_model_path", None) or None
                where = f"last good checkpoint: {ckpt}" if ckpt else "no checkpoint was written yet"
                raise TrainingDiverged(
                    f"{name} became {value.float().mean().item()} at step {self.global_step}: training stopped, {where}; "
                    f"try a lower optimizer.lr or model.grad_clip"
                )

    # ---- validation must not change the training trajectory (nor what a resumed run does next) ---
    def on_validation_start(self) -> None:
        self._rng_outside_validation = torch.get_rng_state()
        if self.device.type == "cuda":
            self._cuda_rng_outside_validation = torch.cuda.get_rng_state(self.device)

    def on_validation_end(self) -> None:
        torch.set_rng_state(self._rng_outside_validation)
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(self._cuda_rng_outside_validation, self.device)

    # ---- checkpoint extras: RNG state so a resumed run continues the same random stream ------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.check_finite()  # never write a checkpoint of a diverged model
        cls = type(self)
        checkpoint["genlab"] = {
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "config": getattr(self, "run_config", {}),
        }
        np_state = np.random.get_state()
        checkpoint["genlab_rng"] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
            "python": list(random.getstate()[1]) + [random.getstate()[0], random.getstate()[2]],
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("genlab_rng")
        if not state:
            return
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
        name, keys, *rest = state["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
        py = state["python"]
        random.setstate((py[-2], tuple(py[:-2]), py[-1]))

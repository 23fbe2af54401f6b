"""The GAN LightningModule: DCGAN / ResNet / MLP nets plus the usual stability switches.

Training loop (manual optimization; Lightning 2.x has no ``optimizer_idx``). One training step =
one batch =

1. ``n_critic`` discriminator updates, all on the SAME real batch, each with fresh noise;
2. one generator update (fresh noise);
3. the EMA copy of G (``model.ema``) is updated and LR schedulers step.

``trainer.max_steps`` therefore counts GENERATOR updates, which is also the number of batches, whatever
``n_critic`` is. Lightning counts every ``optimizer.step()`` under manual optimization as a global step
(Lightning #17958), so the discriminator optimizer's steps are kept out of the count: ``trainer.global_step``
== number of G updates == batches seen.

Gradient norms are measured, and clipped when ``model.grad_clip > 0``, in ``on_before_optimizer_step``,
i.e. after the precision plugin has unscaled the gradients (mixed precision safe). Lightning's
``gradient_clip_val`` cannot be used: it raises under manual optimization.

Logged (``train/``): ``loss_d`` and ``loss_g`` every step; at the trainer's ``log_every_n_steps`` cadence
also ``d_real`` / ``d_fake`` (mean raw D LOGIT on the
real / generated batch; sigmoid(logit) is D's probability for ``loss=ns``), ``grad_norm_g``, ``grad_norm_d``
(before clipping), ``lr_g``, ``lr_d`` and, when enabled, ``gp`` and ``r1`` (unweighted penalties).
The same logging steps hand the health monitor (:meth:`pop_health_signals`) the losses, gradient norms and, for
``loss=ns|hinge``, D's accuracy on the real and the generated batch (logit sign).
Validation logs the same losses under ``val/``; sample quality (``val/modes_covered``, ``val/hq_fraction``, FID,
...) comes from the eval callback (``callbacks=eval``), not from the module.

Class-conditional (``model.conditional``): the fake batches of a step are drawn for the labels of the real
batch (the data's class frequencies; WGAN-GP interpolates pairs of the same class), D is the projection
discriminator, and with ``model.ac_weight > 0`` D's auxiliary classifier adds ``ac_weight * CE`` on the real
labels to D's loss and on the requested labels of the fakes to G's (StudioGAN's ACGAN), reported as
``ac_loss``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.optim.swa_utils import AveragedModel

from genlab.config.spec import DataSpec
from genlab.models.base import GenerativeModule
from genlab.models.capabilities import HealthSignals
from genlab.models.gan.config import IMAGE_SIZES, GANConfig
from genlab.models.gan.diffaugment import diff_augment
from genlab.models.gan.losses import LOSSES, gradient_penalty, r1_penalty
from genlab.models.gan.nets import build_discriminator, build_generator
from genlab.models.optim import OptimizerConfig, build_optimizer, build_scheduler
from genlab.utils.compat import exclude_from_global_step
from genlab.utils.errors import ConfigError


def pack_samples(x: Tensor, pack: int) -> Tensor:
    """PacGAN: concatenate groups of ``pack`` consecutive samples along the channel / feature axis.

    ``(B, C, H, W) -> (B // pack, pack * C, H, W)`` (``(B, D) -> (B // pack, pack * D)``); a remainder
    of fewer than ``pack`` samples is dropped.
    """
    if pack == 1:
        return x
    groups = x.size(0) // pack
    if groups == 0:
        raise ConfigError(
            f"a batch of {x.size(0)} samples cannot be packed by model.pack={pack}; use a larger batch"
        )
    return x[: groups * pack].reshape(groups, pack * x.size(1), *x.shape[2:])


def ema_average(decay: float, averaged: Tensor, current: Tensor, num_averaged: Tensor) -> Tensor:
    """``AveragedModel``'s ``avg_fn`` for an exponential moving average. A module-level function (bound
    with ``partial``) rather than torch's ``get_ema_multi_avg_fn`` closure: ``ddp_spawn`` pickles the model."""
    return averaged.lerp(current, 1 - decay)


class GAN(GenerativeModule, HealthSignals):
    config_class = GANConfig
    family = "gan"
    config: GANConfig

    def __init__(self, config: GANConfig, data: DataSpec, optimizer: OptimizerConfig | None = None) -> None:
        super().__init__(config, data, optimizer)
        self.automatic_optimization = False
        cfg = self.config
        self.generator = build_generator(cfg, self.spec)
        self.discriminator = build_discriminator(cfg, self.spec)
        self.d_loss_fn, self.g_loss_fn = LOSSES[cfg.loss]
        self.augmentations = cfg.augmentations
        self.memory_format = (
            torch.channels_last if cfg.channels_last and self.spec.is_image else torch.contiguous_format
        )
        self.generator.to(memory_format=self.memory_format)
        self.discriminator.to(memory_format=self.memory_format)
        # EMA of G's weights (BN buffers copied); a submodule, so it is checkpointed with the model
        self.g_ema = (
            AveragedModel(self.generator, avg_fn=partial(ema_average, cfg.ema_decay)).requires_grad_(False)
            if cfg.ema
            else None
        )
        if cfg.compile:  # in place: state_dict keys stay the same
            self.generator.compile()
            self.discriminator.compile()
        self._grad_norms: dict[str, Tensor] = {}
        self._health: dict[str, Tensor | float] | None = None

    # ---- config-time contract ----------------------------------------------------------------
    ddp_unused_parameters = True  # D's step leaves G without gradients and G's step D

    @classmethod
    def check_training(cls, config, batch_size: int, trainer: Any) -> None:
        manual = "the GAN steps its two optimizers itself (manual optimization)"
        if trainer.accumulate_grad_batches != 1:
            raise ConfigError(
                f"trainer.accumulate_grad_batches={trainer.accumulate_grad_batches}: {manual}, which Lightning "
                "cannot accumulate; use a larger dataset.batch_size instead"
            )
        if trainer.gradient_clip_val:
            raise ConfigError(
                f"trainer.gradient_clip_val={trainer.gradient_clip_val}: {manual}, which Lightning cannot clip; "
                f"use model.grad_clip={trainer.gradient_clip_val} instead"
            )
        if config.pack > batch_size:
            raise ConfigError(
                f"model.pack={config.pack} is larger than the batch each training process gets ({batch_size}): "
                f"D would see no packed sample; raise dataset.batch_size to at least {config.pack} per process "
                "or lower model.pack"
            )

    @classmethod
    def supported_image_sizes(cls, config) -> tuple[int, ...] | None:
        return IMAGE_SIZES.get(config.net)

    @classmethod
    def expected_value_range(cls, config) -> tuple[float, float] | None:
        return (-1.0, 1.0) if config.net != "mlp" else None  # tanh output

    @classmethod
    def supports_vectors(cls, config) -> bool:
        return config.net == "mlp"

    @classmethod
    def supports_images(cls, config) -> bool:
        return config.net != "mlp"

    @classmethod
    def check_data(cls, config: GANConfig, spec: DataSpec) -> None:
        super().check_data(config, spec)
        if config.diffaugment and not spec.is_image:
            raise ConfigError(
                f"model.diffaugment={config.diffaugment!r} only applies to images, but dataset {spec.name} has "
                f"{spec.shape[0]}-D vectors; set model.diffaugment=''"
            )

    # ---- sampling ----------------------------------------------------------------------------
    @property
    def sampling_generator(self) -> torch.nn.Module:
        """The network used for samples and evaluation: the EMA copy when enabled."""
        return self.g_ema.module if self.g_ema is not None else self.generator

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        net = self.sampling_generator
        was_training = net.training
        net.eval()
        try:
            return self.generate(net, z.to(self.device), self.condition(labels, len(z)))
        finally:
            net.train(was_training)

    def generate(self, net: torch.nn.Module, z: Tensor, labels: Tensor | None) -> Tensor:
        return net(z) if labels is None else net(z, labels)

    def critic(self, x: Tensor, labels: Tensor | None, with_classes: bool = False):
        """D's logits of (packed) inputs; a conditional D also reads the labels (and returns its class logits
        with ``with_classes``)."""
        if labels is None:
            return (self.discriminator(x), None) if with_classes else self.discriminator(x)
        return self.discriminator(x, labels, with_classes=with_classes)

    # ---- optimizers --------------------------------------------------------------------------
    def configure_optimizers(self):
        lr_g, lr_d = self.config.learning_rates(self.optim_config)
        opt_g = build_optimizer(self.generator.parameters(), self.optim_config, lr=lr_g)
        opt_d = build_optimizer(self.discriminator.parameters(), self.optim_config, lr=lr_d)
        total_steps = (
            self.trainer.max_steps if self.trainer.max_steps > 0 else self.trainer.estimated_stepping_batches
        )
        schedulers = [build_scheduler(opt, self.optim_config, int(total_steps)) for opt in (opt_g, opt_d)]
        if schedulers[0] is None:
            return [opt_g, opt_d]
        return [opt_g, opt_d], schedulers

    @classmethod
    def optimizer_settings(cls, config: GANConfig, optimizer: OptimizerConfig) -> list[dict[str, Any]]:
        return [optimizer.hyperparameters(lr) for lr in config.learning_rates(optimizer)]

    def on_before_optimizer_step(self, optimizer) -> None:
        """Clip (when enabled) the gradient norm of the network this optimizer updates; measure it only on the
        steps whose diagnostics are logged."""
        clip = self.config.grad_clip > 0
        if not clip and not self.is_logging_step():
            return
        name = "g" if optimizer is self.trainer.optimizers[0] else "d"
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not params:
            return
        if clip:
            norm = torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        self._grad_norms[name] = norm.detach()

    # ---- training ----------------------------------------------------------------------------
    def discriminator_input(self, x: Tensor) -> Tensor:
        """What D sees: DiffAugment (when enabled), then PacGAN packing."""
        if self.augmentations:
            x = diff_augment(x, self.augmentations)
        return pack_samples(x, self.config.pack).contiguous(memory_format=self.memory_format)

    def noise(self, n: int) -> Tensor:
        return torch.randn(n, self.latent_dim, device=self.device)

    def batch_labels(self, labels: Tensor | None) -> Tensor | None:
        """The labels a step conditions on: the real batch's labels for a conditional GAN, else None."""
        return labels.long() if self.conditional else None

    def discriminator_losses(
        self, real: Tensor, with_penalties: bool, labels: Tensor | None = None, accuracy: bool = False
    ) -> dict[str, Tensor]:
        """D's objective on a real batch and a fresh fake batch (of the same labels when conditional);
        ``loss_d`` includes the enabled penalties and the auxiliary classifier loss. ``accuracy`` adds
        ``acc_real`` / ``acc_fake``, the share of each batch D classifies right (logit sign; not for
        ``loss=wgan``, whose critic values have no sign convention)."""
        with torch.no_grad():
            fake = self.generate(self.generator, self.noise(real.size(0)), labels)
        real_in, fake_in = self.discriminator_input(real), self.discriminator_input(fake)
        use_r1 = with_penalties and self.config.r1_gamma > 0
        if use_r1:
            real_in = real_in.detach().requires_grad_(True)
        real_logits, real_classes = self.critic(real_in, labels, with_classes=True)
        fake_logits = self.critic(fake_in, labels)
        out = {
            "loss_d": self.d_loss_fn(real_logits, fake_logits),
            "d_real": real_logits.detach().mean(),
            "d_fake": fake_logits.detach().mean(),
        }
        if accuracy and self.config.loss != "wgan":
            out["acc_real"] = (real_logits.detach() > 0).float().mean()
            out["acc_fake"] = (fake_logits.detach() < 0).float().mean()
        if real_classes is not None:
            out["ac_loss"] = F.cross_entropy(real_classes, labels)
            out["loss_d"] = out["loss_d"] + self.config.ac_weight * out["ac_loss"]
        gp_weight = self.config.gradient_penalty
        if with_penalties and gp_weight > 0:
            alpha = torch.rand(real_in.size(0), device=real_in.device)
            critic = self.discriminator if labels is None else partial(self.critic, labels=labels)
            out["gp"] = gradient_penalty(critic, real_in, fake_in, alpha)
            out["loss_d"] = out["loss_d"] + gp_weight * out["gp"]
        if use_r1:
            out["r1"] = r1_penalty(real_logits, real_in)
            out["loss_d"] = out["loss_d"] + self.config.r1_gamma / 2 * out["r1"]
        return out

    def generator_loss(self, n: int, labels: Tensor | None = None) -> Tensor:
        fake = self.generate(self.generator, self.noise(n), labels)
        logits, classes = self.critic(self.discriminator_input(fake), labels, with_classes=True)
        loss = self.g_loss_fn(logits)
        if classes is not None:
            loss = loss + self.config.ac_weight * F.cross_entropy(classes, labels)
        return loss

    def training_step(self, batch, batch_idx: int) -> dict[str, Tensor]:
        """One G update after ``n_critic`` D updates; returns the detached losses (watched by the divergence guard)."""
        real, labels = batch
        labels = self.batch_labels(labels)
        opt_g, opt_d = self.optimizers()
        exclude_from_global_step(opt_d)  # trainer.global_step counts G updates only
        logging = self.is_logging_step()

        with self.toggled_optimizer(opt_d):
            for _ in range(self.config.n_critic):
                d_out = self.discriminator_losses(real, with_penalties=True, labels=labels, accuracy=logging)
                opt_d.zero_grad(set_to_none=True)
                self.manual_backward(d_out["loss_d"])
                opt_d.step()

        with self.toggled_optimizer(opt_g):
            loss_g = self.generator_loss(real.size(0), labels)
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(loss_g)
            opt_g.step()

        for scheduler in self.schedulers():
            scheduler.step()
        if self.g_ema is not None:
            self.g_ema.update_parameters(self.generator)

        d_out = {k: v.detach() for k, v in d_out.items()}
        losses = {"loss_d": d_out.pop("loss_d"), "loss_g": loss_g.detach()}
        n = real.size(0)
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=True, batch_size=n)
        if logging:
            accuracy = {f"d_{k}": d_out.pop(k) for k in ("acc_real", "acc_fake") if k in d_out}
            self.log_dict(self.diagnostics(d_out, opt_g, opt_d), batch_size=n)
            grad_norms = {f"grad_norm_{k}": v for k, v in self._grad_norms.items()}
            self._health = {**losses, **accuracy, **grad_norms}
        return losses

    def diagnostics(self, d_out: dict[str, Tensor], opt_g, opt_d) -> dict[str, Tensor | float]:
        """D's mean logits, the penalties, gradient norms and learning rates, under ``train/``."""
        stats = {f"train/{k}": v for k, v in d_out.items()}
        stats.update({f"train/grad_norm_{k}": v for k, v in self._grad_norms.items()})
        stats["train/lr_g"] = opt_g.param_groups[0]["lr"]
        stats["train/lr_d"] = opt_d.param_groups[0]["lr"]
        return stats

    def schedulers(self) -> list:
        found = self.lr_schedulers()
        if found is None:
            return []
        return found if isinstance(found, list) else [found]

    # ---- validation --------------------------------------------------------------------------
    def validation_step(self, batch, batch_idx: int) -> None:
        real, labels = batch
        if real.size(0) < self.config.pack:
            return
        labels = self.batch_labels(labels)
        out = self.discriminator_losses(real, with_penalties=False, labels=labels)
        out["loss_g"] = self.generator_loss(real.size(0), labels)
        self.log_dict(
            {f"val/{k}": v for k, v in out.items()}, on_epoch=True, sync_dist=True, batch_size=real.size(0)
        )

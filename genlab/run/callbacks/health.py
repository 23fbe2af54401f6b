"""The training health monitor: recognizes the classic GAN and VAE failures while the run trains, and names
the config keys that usually help.

On every logging step (``trainer.log_every_n_steps``) it reads the scalars the training step already computed
(:class:`~genlab.models.capabilities.HealthSignals`: losses, D accuracy, gradient norms, KL per latent dim) and
the step's losses; on every validation round it measures the diversity of samples from a fixed noise batch
(GANs). Each detector (:mod:`genlab.health.detectors`) logs ``health/<signal>`` scalars; when its condition
holds the monitor prints ONE warning line through the ``genlab`` logger, once per run. At the end of fit (also
when interrupted or stopped by the divergence guard) it writes ``<run dir>/health.json``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from genlab.config.schema import check_at_least, require
from genlab.health.advice import advice
from genlab.health.detectors import (
    Detector,
    DiscriminatorWins,
    ExplodingGradients,
    LossDivergence,
    ModeCollapse,
    NonFinite,
    PosteriorCollapse,
    VanishingGradients,
)
from genlab.health.diversity import diversity_ratio, feature_space, mean_pairwise_distance
from genlab.health.record import Verdict, health_record, write_health
from genlab.models.capabilities import HealthSignals, Sampler
from genlab.run.callbacks.eval_metrics import mode_coverage_fallback, round_mode_coverage
from genlab.utils.errors import TrainingDiverged

log = logging.getLogger("genlab")

SEED = 20240  # the fixed noise / real batch behind the diversity measure


@dataclass(frozen=True)
class HealthConfig:
    """``callbacks.health``: every threshold of the monitor (see README "Training health")."""

    # false: no monitoring, no health.json
    enabled: bool = True
    # steps a condition must hold before it is reported (d_wins, vanishing gradients, posterior collapse),
    # and the span of the medians the gradient detectors compare against
    window: int = 1000
    # d_wins: over a window, D's median accuracy on the real and generated batch (logit sign; loss=ns|hinge)
    # is at least this ...
    d_wins_accuracy: float = 0.95
    # ... and its median loss_d at most this
    d_wins_loss_d: float = 0.05
    # loss_divergence (GAN): the median of the latest 5 logged |loss_d| above this
    loss_limit: float = 100.0
    # exploding_gradients: the median of the latest 5 logged gradient norms above this factor of the highest
    # median the norm had over any earlier window, at 5 logged steps in a row
    grad_spike: float = 20.0
    # vanishing_gradients (VAE): the gradient norm's window median below this share of its peak, for a window
    grad_vanish: float = 1.0e-3
    # posterior_collapse (VAE): a latent dim is active when its batch-mean KL exceeds this many nats ...
    kl_active: float = 0.01
    # ... the posterior collapsed when fewer than this share of the latent dims is active ...
    active_fraction: float = 0.1
    # ... while the reconstruction loss's window median changed by less than this share from the previous window
    recon_plateau: float = 0.1
    # mode_collapse (GAN, each validation round): fixed-noise samples' mean pairwise distance over real data's
    # below this ...
    min_diversity: float = 0.2
    # ... and below this share of its highest value in the run
    diversity_drop: float = 0.5
    # mode_collapse on data with known modes (ring, grid): fewer than this share of the modes covered ...
    modes_fraction: float = 0.5
    # ... by the on-mode samples, when at least this share of samples lies on a mode
    min_on_modes: float = 0.3
    # vector data: samples drawn from fixed noise (and real samples) behind the diversity measure (images: the
    # model's fixed 64-latent batch); mode coverage reads the eval request's samples (2500 by default)
    n_samples: int = 1000

    def __post_init__(self) -> None:
        key = "callbacks.health."
        check_at_least(f"{key}window", self.window, 1, 1000)
        for name in (
            "d_wins_accuracy",
            "active_fraction",
            "diversity_drop",
            "modes_fraction",
            "min_on_modes",
        ):
            value = getattr(self, name)
            require(
                isinstance(value, int | float) and 0 <= value <= 1,
                f"{key}{name}={value} must be a number in [0, 1]",
            )
        for name, example in (
            ("d_wins_loss_d", 0.05),
            ("loss_limit", 100),
            ("grad_spike", 20),
            ("grad_vanish", 1e-3),
            ("kl_active", 0.01),
            ("recon_plateau", 0.1),
            ("min_diversity", 0.2),
        ):
            check_at_least(f"{key}{name}", getattr(self, name), 0, example)
        check_at_least(f"{key}n_samples", self.n_samples, 2, 1000)

    def detectors(self, family: str) -> list[Detector]:
        """The detectors that apply to a model family."""
        w = self.window
        exploding = ExplodingGradients(w, self.grad_spike)
        if family == "gan":
            return [
                DiscriminatorWins(w, self.d_wins_accuracy, self.d_wins_loss_d),
                LossDivergence(self.loss_limit),
                ModeCollapse(self.min_diversity, self.diversity_drop, self.modes_fraction, self.min_on_modes),
                exploding,
                NonFinite(),
            ]
        if family == "vae":
            return [
                PosteriorCollapse(w, self.kl_active, self.active_fraction, self.recon_plateau),
                exploding,
                VanishingGradients(w, self.grad_vanish),
                NonFinite(),
            ]
        return [NonFinite()]


def plain_signals(signals: dict[str, Tensor | float]) -> dict[str, float | list[float]]:
    """Tensors -> floats (vectors -> lists) with one device-to-host copy."""
    out: dict[str, float | list[float]] = {}
    tensors = {k: v for k, v in signals.items() if isinstance(v, Tensor)}
    for k, v in signals.items():
        if not isinstance(v, Tensor):
            out[k] = float(v)
    if tensors:
        flat = torch.cat([t.detach().float().reshape(-1) for t in tensors.values()]).cpu().tolist()
        i = 0
        for k, t in tensors.items():
            n = t.numel()
            out[k] = flat[i] if t.dim() == 0 else flat[i : i + n]
            i += n
    return out


class HealthMonitor(pl.Callback):
    config_class = HealthConfig

    def __init__(self, config: HealthConfig) -> None:
        self.config = config
        self.family = "?"
        self.detectors: list[Detector] = []
        self.verdicts: dict[str, Verdict] = {}
        self.advice: dict[str, str] = {}
        self._real_spread: float | None = None
        self._modes = mode_coverage_fallback()  # 2D mode coverage when no eval callback computes it
        self._restored: dict[str, dict[str, Any]] = {}

    # ---- state: verdicts survive a resume (the windows start afresh) --------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"verdicts": {name: vars(v).copy() for name, v in self.verdicts.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._restored = dict(state.get("verdicts", {}))
        self._apply_restored()

    def _apply_restored(self) -> None:
        """Lightning restores callback state after ``setup``; applied in both hooks, either order works."""
        for name, saved in self._restored.items():
            if name in self.verdicts:
                self.verdicts[name] = Verdict(**saved)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or not self.config.enabled:
            return
        self.family = getattr(pl_module, "family", "?")
        self.detectors = self.config.detectors(self.family)
        self.verdicts = {d.name: Verdict(d.name) for d in self.detectors}
        self._apply_restored()
        model_cfg, optim_cfg = getattr(pl_module, "config", None), getattr(pl_module, "optim_config", None)
        self.advice = {
            d.name: advice(d.name, self.family, model_cfg, optim_cfg) if model_cfg and optim_cfg else ""
            for d in self.detectors
        }

    # ---- observing --------------------------------------------------------------------------------
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self.detectors:
            return
        if isinstance(pl_module, HealthSignals):
            raw = pl_module.pop_health_signals()  # set on the model's logging steps only
            if raw is None:
                return
        elif trainer.global_step % max(1, trainer.log_every_n_steps):
            return
        else:
            raw = None
        signals = dict(raw or {})
        losses = outputs if isinstance(outputs, dict) else {"loss": outputs}
        for name, value in losses.items():  # what the divergence guard checks, in the same copy
            if isinstance(value, Tensor):
                signals.setdefault(name, value)
        self.observe(trainer, "step", plain_signals(signals))

    def on_validation_end(self, trainer, pl_module) -> None:
        if not self.detectors or trainer.sanity_checking or trainer.state.fn != "fit":
            return
        if not isinstance(pl_module, Sampler) or not any(d.cadence == "validation" for d in self.detectors):
            return
        self.observe(trainer, "validation", self.sample_signals(trainer, pl_module))

    @torch.no_grad()
    def sample_signals(self, trainer, pl_module) -> dict[str, float]:
        """Diversity of fixed-noise samples relative to fixed real samples; on 2D mixtures, the round's mode
        coverage (the eval callback's figures, or the same evaluation with its defaults)."""
        dm = trainer.datamodule
        if pl_module.spec.is_image:
            samples = pl_module.to_unit(pl_module.decode(pl_module.fixed_latents()))
        else:
            samples = pl_module.sample(self.config.n_samples, generator=torch.Generator().manual_seed(SEED))
        if self._real_spread is None and hasattr(dm, "real_samples"):
            real = dm.real_samples(
                len(samples) if pl_module.spec.is_image else self.config.n_samples,
                split="train",
                generator=torch.Generator().manual_seed(SEED),
            )
            real = pl_module.to_unit(real) if pl_module.spec.is_image else real
            self._real_spread = mean_pairwise_distance(feature_space(real))
        signals = {"diversity": diversity_ratio(samples, self._real_spread or 0.0)}
        signals.update(round_mode_coverage(trainer, pl_module, self._modes) or {})
        return signals

    def observe(self, trainer: pl.Trainer, cadence: str, signals: dict[str, Any]) -> None:
        step = trainer.global_step
        scalars: dict[str, float] = {}
        for detector in self.detectors:
            if detector.cadence != cadence:
                continue
            values, finding = detector.observe(step, signals)
            scalars.update({f"health/{k}": v for k, v in values.items() if math.isfinite(v)})
            if finding is not None:
                self.fire(trainer, detector.name, step, finding)
        if scalars:
            for logger in trainer.loggers:
                logger.log_metrics(scalars, step=step)

    def fire(self, trainer: pl.Trainer, name: str, step: int, finding: str) -> None:
        tip = self.advice.get(name)
        message = f"{finding}: {tip}" if tip else finding
        if self.verdicts[name].record(step, message) and trainer.is_global_zero:
            log.warning("health: %s", message)

    # ---- the end: health.json ---------------------------------------------------------------------
    def on_fit_end(self, trainer, pl_module) -> None:
        self.write(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if not self.detectors:
            return
        if isinstance(exception, TrainingDiverged) and not self.verdicts["nonfinite"].fired:
            first = str(exception).split(": training stopped")[0]
            self.fire(trainer, "nonfinite", trainer.global_step, first)
        self.write(trainer)

    def write(self, trainer: pl.Trainer) -> None:
        if not self.detectors or not trainer.is_global_zero:
            return
        record = health_record(self.family, list(self.verdicts.values()))
        write_health(Path(trainer.default_root_dir), record)

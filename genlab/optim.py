"""The `optimizer` config group: a typed config and one builder used by every model."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from genlab.errors import ConfigError

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}
SCHEDULERS = ("none", "cosine", "linear")


@dataclass
class OptimizerConfig:
    name: str = "adam"
    lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    weight_decay: float = 0.0
    momentum: float = 0.0
    # learning-rate schedule over trainer.max_steps: constant, cosine decay or linear decay to 0
    scheduler: str = "none"

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ConfigError(f"optimizer.name={self.name!r} is not known; allowed: {', '.join(OPTIMIZERS)}")
        if not self.lr > 0:
            raise ConfigError(f"optimizer.lr={self.lr} must be > 0 (e.g. optimizer.lr=2e-4)")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"optimizer.betas={list(self.betas)} must be two numbers in [0, 1)")
        if self.momentum < 0:
            raise ConfigError(f"optimizer.momentum={self.momentum} must be >= 0")
        if self.weight_decay < 0:
            raise ConfigError(f"optimizer.weight_decay={self.weight_decay} must be >= 0")
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(
                f"optimizer.scheduler={self.scheduler!r} is not known; allowed: {', '.join(SCHEDULERS)}"
            )


def build_optimizer(params: Iterable, cfg: OptimizerConfig, lr: float | None = None) -> torch.optim.Optimizer:
    """Build the configured optimizer; ``lr`` overrides ``cfg.lr`` (e.g. for TTUR's separate G/D rates)."""
    lr = cfg.lr if lr is None else lr
    cls = OPTIMIZERS[cfg.name]
    if cfg.name in ("adam", "adamw"):
        return cls(params, lr=lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    return cls(params, lr=lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum)  # rmsprop, sgd


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimizerConfig, total_steps: int):
    """A per-step LR schedule, or None. ``total_steps`` is the run's trainer.max_steps."""
    if cfg.scheduler == "none" or total_steps <= 0:
        return None
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return torch.optim.lr_scheduler.LinearLR(
        optimizer, start_factor=1.0, end_factor=0.0, total_iters=total_steps
    )

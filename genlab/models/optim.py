"""The `optimizer` config group: a typed config and one builder used by every model."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from genlab.config.schema import check_at_least, check_choice, check_positive, require

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}
SCHEDULERS = ("none", "cosine", "linear")


@dataclass(frozen=True)
class OptimizerConfig:
    name: str = "adam"  # adam | adamw | rmsprop | sgd
    lr: float = 2e-4  # learning rate (the family's default: GAN 2e-4, VAE and classifier 1e-3)
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])  # Adam/AdamW moment decays
    weight_decay: float = 0.0  # L2 (adam, sgd) or decoupled (adamw) weight decay
    momentum: float = 0.0  # sgd and rmsprop momentum
    # learning-rate schedule over trainer.max_steps: constant, cosine decay or linear decay to 0
    scheduler: str = "none"

    def __post_init__(self) -> None:
        check_choice("optimizer.name", self.name, OPTIMIZERS)
        check_positive("optimizer.lr", self.lr, 2e-4)
        require(
            len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
            f"optimizer.betas={list(self.betas)} must be two numbers in [0, 1)",
        )
        check_at_least("optimizer.momentum", self.momentum, 0, 0.9)
        check_at_least("optimizer.weight_decay", self.weight_decay, 0, 0.01)
        check_choice("optimizer.scheduler", self.scheduler, SCHEDULERS)

    def hyperparameters(self, lr: float | None = None) -> dict[str, float | tuple[float, float]]:
        """What the optimizer's param groups hold for this config (``lr`` overrides ``self.lr``)."""
        out: dict = {"lr": self.lr if lr is None else lr, "weight_decay": self.weight_decay}
        if self.name in ("adam", "adamw"):
            out["betas"] = tuple(self.betas)
        else:
            out["momentum"] = self.momentum
        return out


def build_optimizer(params: Iterable, cfg: OptimizerConfig, lr: float | None = None) -> torch.optim.Optimizer:
    """Build the configured optimizer; ``lr`` overrides ``cfg.lr`` (e.g. for TTUR's separate G/D rates)."""
    return OPTIMIZERS[cfg.name](params, **cfg.hyperparameters(lr))


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimizerConfig, total_steps: int):
    """A per-step LR schedule, or None. ``total_steps`` is the run's trainer.max_steps."""
    if cfg.scheduler == "none" or total_steps <= 0:
        return None
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return torch.optim.lr_scheduler.LinearLR(
        optimizer, start_factor=1.0, end_factor=0.0, total_iters=total_steps
    )

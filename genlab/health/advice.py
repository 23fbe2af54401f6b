"""What to turn when a detector fires: the genlab config keys that usually help, with values for this run.

Every key named here is a field of the family's typed config (``genlab.models.*.config``) or of
:class:`genlab.models.optim.OptimizerConfig`; ``tests/test_health.py`` checks that they are.
"""

from __future__ import annotations

from typing import Any

from genlab.health.detectors import fmt


def advice(detector: str, family: str, model: Any, optimizer: Any) -> str:
    """``try ...`` for ``detector`` on a run of ``family`` with typed ``model`` / ``optimizer`` configs."""
    lr = optimizer.lr
    lower_lr = f"optimizer.lr={fmt(lr / 10)} (now {fmt(lr)})"
    if family == "gan":
        lr_g, lr_d = model.learning_rates(optimizer)
        # D too strong: bring its rate down to G's (or below when they are equal)
        slower_d = f"model.lr_d={fmt(lr_g if lr_d > lr_g else lr_d / 4)} (now {fmt(lr_d)})"
        # G chasing D's favourite region: bring G's rate down to D's (or below when they are equal)
        slower_g = f"model.lr_g={fmt(lr_d if lr_g > lr_d else lr_g / 4)} (now {fmt(lr_g)})"
        options = {
            "d_wins": [
                "model.r1_gamma=1" if model.r1_gamma == 0 else f"model.r1_gamma={fmt(model.r1_gamma * 10)}",
                "model.diffaugment=translation,cutout" if not model.diffaugment else None,
                "model.spectral_norm=true" if not model.spectral_norm else None,
                slower_d,
            ],
            "loss_divergence": [
                "model.gp_lambda=10" if model.gradient_penalty == 0 else None,
                "model.spectral_norm=true" if not model.spectral_norm else None,
                "model.r1_gamma=1" if model.r1_gamma == 0 and model.loss != "wgan" else None,
                lower_lr,
            ],
            "mode_collapse": [
                "model.pack=4" if model.pack == 1 else None,
                "model.r1_gamma=0.1" if model.r1_gamma == 0 else None,
                slower_g,
                "model.ema=true" if not model.ema else None,
            ],
            "exploding_gradients": [
                "model.grad_clip=10"
                if model.grad_clip == 0
                else f"model.grad_clip={fmt(model.grad_clip / 10)}",
                "model.gp_lambda=10" if model.loss == "wgan" and model.gradient_penalty == 0 else None,
                "model.spectral_norm=true" if not model.spectral_norm else None,
                lower_lr,
            ],
        }
    elif family == "vae":
        options = {
            "posterior_collapse": [
                f"model.beta=1 (now {fmt(model.beta)})" if model.beta > 1 else None,
                "model.kl_warmup_steps=5000" if model.kl_warmup_steps == 0 else None,
                "model.free_bits=0.25" if model.free_bits == 0 else None,
                "a weaker decoder (model.hidden, model.channels)",
            ],
            "exploding_gradients": [
                "model.grad_clip=100"
                if model.grad_clip == 0
                else f"model.grad_clip={fmt(model.grad_clip / 10)}",
                "model.learn_std=true" if model.likelihood == "gaussian" and not model.learn_std else None,
                f"model.gaussian_std=0.1 (now {fmt(model.gaussian_std)})"
                if model.likelihood == "gaussian" and model.gaussian_std < 0.05
                else None,
                lower_lr,
            ],
            "vanishing_gradients": [
                f"optimizer.lr={fmt(lr * 3)} (now {fmt(lr)})",
                "optimizer.scheduler=none" if optimizer.scheduler != "none" else None,
                f"model.beta=1 (now {fmt(model.beta)})" if model.beta > 1 else None,
            ],
        }
    else:
        options = {}
    clip = "model.grad_clip=10" if family == "gan" else "model.grad_clip=100"
    options.setdefault("nonfinite", [lower_lr, clip if getattr(model, "grad_clip", 1) == 0 else None])
    keys = [k for k in options.get(detector, [lower_lr]) if k]
    if len(keys) == 1:
        return f"try {keys[0]}"
    return f"try {', '.join(keys[:-1])}, or {keys[-1]}"

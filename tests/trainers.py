"""A bare Lightning Trainer for module-level tests: CPU, no logger, checkpoints, progress bar or summary."""

from __future__ import annotations

import pytorch_lightning as pl


def bare_trainer(max_steps: int, **overrides) -> pl.Trainer:
    options = dict(
        max_steps=max_steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return pl.Trainer(**{**options, **overrides})

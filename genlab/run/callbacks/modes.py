"""Mode coverage of a model on a 2D mixture (ring, grid), measured once per validation round.

The one draw of the run: ``val/modes_covered``, ``val/num_modes`` and ``val/hq_fraction`` are logged from
``n_samples`` samples with a fixed seed (comparable across rounds and runs); the checkpoint monitor, sweeps, the
training-time eval callback and the health monitor all read these logged values.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from genlab.metrics.modes import mode_stats
from genlab.models.capabilities import Sampler

N_SAMPLES = 2500
SEED = 0
KEYS = ("modes_covered", "num_modes", "hq_fraction")


def measures(trainer: pl.Trainer, pl_module: pl.LightningModule) -> bool:
    """Whether this run's data is a 2D mixture with known modes and its model can sample."""
    dm = getattr(trainer, "datamodule", None)
    return (
        isinstance(pl_module, Sampler)
        and not pl_module.spec.is_image
        and getattr(dm, "modes", None) is not None
        and getattr(dm, "mode_std", None) is not None
    )


class ModeCoverage(pl.Callback):
    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not measures(trainer, pl_module):
            return
        dm = trainer.datamodule
        samples = pl_module.sample(N_SAMPLES, generator=torch.Generator().manual_seed(SEED))
        stats = mode_stats(samples, dm.modes, float(dm.mode_std))
        for key in KEYS:
            pl_module.log(f"val/{key}", float(stats[key]), sync_dist=True)

"""Datasets: one LightningDataModule per ``configs/dataset/*.yaml`` plus the shared data contracts.

The datamodules are imported from their modules (``genlab.data.images`` etc.) by Hydra's
``_target_``; this package only re-exports the light contracts so that importing it stays cheap.
"""

from genlab.data.loader import TensorBatches
from genlab.data.spec import DataSpec

__all__ = ["DataSpec", "TensorBatches"]

"""Lightning callbacks of a genlab run.

The configurable ones (``configs/callbacks/*.yaml``) are looked up by name in :data:`CALLBACKS`, each built
from its typed config. The run-lifecycle ones (RNG state, divergence guard, run record, logger flushing,
graceful interruption) are always on and added by ``train()``.
"""

from genlab.callbacks.checkpoint import Checkpoint, CheckpointConfig
from genlab.callbacks.eval_metrics import EvalMetrics, EvalMetricsConfig
from genlab.callbacks.images import ImageGrids, ImageGridsConfig
from genlab.callbacks.progress import ProgressBar, ProgressConfig
from genlab.callbacks.summary import ModelSummary, ModelSummaryConfig
from genlab.registry import Registry

CALLBACKS = Registry(
    "callbacks",
    {
        "model_checkpoint": Checkpoint,
        "image_grids": ImageGrids,
        "progress": ProgressBar,
        "eval_metrics": EvalMetrics,
        "model_summary": ModelSummary,
    },
)

__all__ = [
    "CALLBACKS",
    "Checkpoint",
    "CheckpointConfig",
    "EvalMetrics",
    "EvalMetricsConfig",
    "ImageGrids",
    "ImageGridsConfig",
    "ModelSummary",
    "ModelSummaryConfig",
    "ProgressBar",
    "ProgressConfig",
]

"""Lightning callbacks of a genlab run.

The configurable ones (``configs/callbacks/*.yaml``) are looked up by name in :data:`CALLBACKS`, each built
from its typed config. The run-lifecycle ones (RNG state, divergence guard, run record, logger flushing,
graceful interruption) are always on and added by ``train()``.
"""

from genlab.config.registry import Registry
from genlab.run.callbacks.checkpoint import Checkpoint, CheckpointConfig
from genlab.run.callbacks.eval_metrics import EvalMetrics, EvalMetricsConfig
from genlab.run.callbacks.health import HealthConfig, HealthMonitor
from genlab.run.callbacks.images import ImageGrids, ImageGridsConfig
from genlab.run.callbacks.progress import ProgressBar, ProgressConfig
from genlab.run.callbacks.summary import ModelSummary, ModelSummaryConfig

CALLBACKS = Registry(
    "callbacks",
    {
        "model_checkpoint": Checkpoint,
        "image_grids": ImageGrids,
        "progress": ProgressBar,
        "eval_metrics": EvalMetrics,
        "model_summary": ModelSummary,
        "health": HealthMonitor,
    },
)

__all__ = [
    "CALLBACKS",
    "Checkpoint",
    "CheckpointConfig",
    "EvalMetrics",
    "EvalMetricsConfig",
    "HealthConfig",
    "HealthMonitor",
    "ImageGrids",
    "ImageGridsConfig",
    "ModelSummary",
    "ModelSummaryConfig",
    "ProgressBar",
    "ProgressConfig",
]

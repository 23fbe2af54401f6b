from genlab.callbacks.checkpoint import Checkpoint
from genlab.callbacks.checkpoint_io import AtomicCheckpointIO
from genlab.callbacks.eval_metrics import EvalMetrics
from genlab.callbacks.images import ImageGrids
from genlab.callbacks.progress import ProgressBar

__all__ = ["AtomicCheckpointIO", "Checkpoint", "EvalMetrics", "ImageGrids", "ProgressBar"]

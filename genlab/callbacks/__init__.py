from genlab.callbacks.checkpoint import Checkpoint
from genlab.callbacks.checkpoint_io import AtomicCheckpointIO
from genlab.callbacks.images import ImageGrids
from genlab.callbacks.progress import ProgressBar

__all__ = ["AtomicCheckpointIO", "Checkpoint", "ImageGrids", "ProgressBar"]

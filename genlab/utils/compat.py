"""The private details of Lightning, Hydra and PyTorch that genlab depends on, in one place (tests/test_compat.py
fails when one of them changes)."""

from __future__ import annotations

from typing import Any

# The file name Lightning's multiprocessing launcher (DDP spawn) gives the model weights that rank 0 passes
# back to the main process; they are read back through the strategy's CheckpointIO, and hold no run record.
SPAWN_RESULTS_NAME = ".temp.ckpt"


def set_last_lr(scheduler: Any, lrs: list[float]) -> None:
    """What ``scheduler.get_last_lr()`` reports (and Lightning's LearningRateMonitor logs) until its next step."""
    scheduler._last_lr = list(lrs)


def summary_file_writer(writer: Any) -> Any:
    """The FileWriter under a ``torch.utils.tensorboard.SummaryWriter``: raw summaries (the HParams plugin's
    experiment/session records) are written through it, as Lightning's TensorBoardLogger does."""
    return writer._get_file_writer()


def logs_kept_this_step(trainer: Any) -> bool:
    """Lightning's own criterion for whether metrics logged in this training step are kept
    (``trainer.log_every_n_steps``)."""
    return bool(trainer._logger_connector.should_update_logs)


def set_event_loader(accumulator: Any, watcher: Any) -> bool:
    """Make a tensorboard ``EventAccumulator`` read its event files through ``watcher`` (it takes no loader
    argument; it reads through this attribute). False, and nothing changed, where the attribute is gone."""
    if not hasattr(accumulator, "_generator"):
        return False
    accumulator._generator = watcher
    return True


def exclude_from_global_step(optimizer: Any) -> Any:
    """Keep this ``LightningOptimizer``'s steps out of ``trainer.global_step`` for the current training step.

    Under manual optimization Lightning counts every ``LightningOptimizer.step`` through these two hooks,
    which its loop re-installs before each ``training_step`` (Lightning #17958)."""
    from pytorch_lightning.core.optimizer import do_nothing_closure

    optimizer._on_before_step = do_nothing_closure
    optimizer._on_after_step = do_nothing_closure
    return optimizer


def save_last_checkpoint(checkpoint: Any, trainer: Any) -> bool:
    """Write ``ModelCheckpoint``'s last checkpoint through its own saving path (its name, its link or copy,
    its bookkeeping) unless it already holds this global step. Whether it wrote one."""
    if checkpoint._last_global_step_saved == trainer.global_step:
        return False
    checkpoint._save_last_checkpoint(trainer, checkpoint._monitor_candidates(trainer))
    return True


def hydra_args_parser() -> Any:
    """The argparse parser ``hydra.main`` reads the command line with (``-m``, ``--cfg``, overrides ...)."""
    from hydra._internal.utils import get_args_parser

    return get_args_parser()

"""The ``logger`` group: typed configs of the Lightning loggers genlab writes, and their registry."""

from __future__ import annotations

from dataclasses import dataclass

from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger

from genlab.config.schema import require
from genlab.registry import Registry


@dataclass(frozen=True)
class TensorBoardConfig:
    """``logger.tensorboard``: event files in ``<save_dir>/<name>`` (one TensorBoard run per genlab run)."""

    save_dir: str = "."
    name: str = "tensorboard"
    version: str = ""
    default_hp_metric: bool = False

    def __post_init__(self) -> None:
        require(bool(self.save_dir.strip()), "logger.tensorboard.save_dir is empty; set a directory")

    def build(self, resume_step: int | None) -> Logger:
        # a resumed run hides the events its previous process wrote after the checkpoint: continuous curves
        purge = None if resume_step is None else resume_step + 1
        return TensorBoardLogger(
            self.save_dir, self.name, self.version, default_hp_metric=self.default_hp_metric, purge_step=purge
        )


@dataclass(frozen=True)
class CSVConfig:
    """``logger.csv``: ``<save_dir>/<name>/metrics.csv``."""

    save_dir: str = "."
    name: str = "csv"
    version: str = ""

    def __post_init__(self) -> None:
        require(bool(self.save_dir.strip()), "logger.csv.save_dir is empty; set a directory")

    def build(self, resume_step: int | None) -> Logger:
        return CSVLogger(self.save_dir, self.name, self.version)


LOGGERS = Registry("logger", {"tensorboard": TensorBoardConfig, "csv": CSVConfig})

"""The ``logger`` group: typed configs of the Lightning loggers genlab writes, and their registry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only

from genlab.config.registry import Registry
from genlab.config.schema import require
from genlab.utils.compat import summary_file_writer


class RunTensorBoardLogger(TensorBoardLogger):
    """Lightning's TensorBoard logger without the ``epoch`` series (genlab runs count steps), and with an
    HParams session per run but no HParams experiment record.

    Without an experiment record, TensorBoard's HParams tab builds the experiment from every run it sees:
    the union of all runs' hyperparameters (those that differ between runs listed first) and of all
    runs' scalar tags as metrics, each shown at its curve's last value. A record written by one run would
    declare only that run's keys and metrics (a GAN's, in a GAN+VAE sweep) for all of them.
    """

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        super().log_metrics({k: v for k, v in metrics.items() if k != "epoch"}, step)

    @rank_zero_only
    def log_session_start(self, params: dict[str, Any]) -> None:
        from torch.utils.tensorboard.summary import hparams

        self.hparams.update(params)  # hparams.yaml
        _, session_start, _ = hparams(params, {})
        summary_file_writer(self.experiment).add_summary(session_start)

    @rank_zero_only
    def log_session_end(self, status: str) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboard.plugins.hparams import api_pb2, metadata
        from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData, SessionEndInfo

        code = {"finished": api_pb2.STATUS_SUCCESS, "failed": api_pb2.STATUS_FAILURE}.get(
            status,
            api_pb2.STATUS_UNKNOWN,  # interrupted: it may still continue (resume=)
        )
        content = HParamsPluginData(
            session_end_info=SessionEndInfo(status=code), version=metadata.PLUGIN_DATA_VERSION
        )
        plugin = SummaryMetadata.PluginData(
            plugin_name=metadata.PLUGIN_NAME, content=content.SerializeToString()
        )
        summary = Summary(
            value=[
                Summary.Value(tag=metadata.SESSION_END_INFO_TAG, metadata=SummaryMetadata(plugin_data=plugin))
            ]
        )
        summary_file_writer(self.experiment).add_summary(summary)


@dataclass(frozen=True)
class TensorBoardConfig:
    """``logger.tensorboard``: event files in ``<save_dir>/<name>`` (one TensorBoard run per genlab run)."""

    # directory holding the TensorBoard run
    save_dir: str = "."
    # TensorBoard run folder under save_dir
    name: str = "tensorboard"
    # sub-folder per version ('': none, one run per genlab run)
    version: str = ""
    # Lightning's placeholder hp_metric in the HParams tab
    default_hp_metric: bool = False

    def __post_init__(self) -> None:
        require(bool(self.save_dir.strip()), "logger.tensorboard.save_dir is empty; set a directory")

    def build(self, resume_step: int | None) -> Logger:
        # a resumed run hides the events its previous process wrote after the checkpoint: continuous curves
        purge = None if resume_step is None else resume_step + 1
        return RunTensorBoardLogger(
            self.save_dir, self.name, self.version, default_hp_metric=self.default_hp_metric, purge_step=purge
        )


@dataclass(frozen=True)
class CSVConfig:
    """``logger.csv``: ``<save_dir>/<name>/metrics.csv``."""

    # directory holding the CSV folder
    save_dir: str = "."
    # folder name under save_dir
    name: str = "csv"
    # sub-folder per version ('': none)
    version: str = ""

    def __post_init__(self) -> None:
        require(bool(self.save_dir.strip()), "logger.csv.save_dir is empty; set a directory")

    def build(self, resume_step: int | None) -> Logger:
        return CSVLogger(self.save_dir, self.name, self.version)


LOGGERS = Registry("logger", {"tensorboard": TensorBoardConfig, "csv": CSVConfig})

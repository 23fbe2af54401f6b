"""The ``logger`` group: Lightning's loggers, each config derived from the logger's own arguments, and their
registry.

Every config has every argument its Lightning logger takes (typed from its annotations, genlab's defaults on
top) and builds the logger for one run: the run's context (a resume point, the sweep and job it belongs to)
fills what a config file cannot know. Scalars reach every logger through Lightning; image grids through
:func:`log_images`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pytorch_lightning.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from pytorch_lightning.utilities import rank_zero_only
from torch import Tensor

from genlab.config.derived import check_annotations, signature_fields
from genlab.config.registry import Registry
from genlab.config.schema import require
from genlab.utils.compat import summary_file_writer
from genlab.utils.errors import ConfigError


@dataclass(frozen=True)
class RunContext:
    """What a logger needs to know about the run it records."""

    run_dir: Path
    output_dir: Path
    resume_step: int | None = None  # the step a resumed run continues from
    sweep: str | None = None  # the sweep directory's name, inside a sweep
    job: str | None = None  # the job's label inside its sweep
    tags: dict[str, str] = field(default_factory=dict)


class LoggerConfig:
    """Base of every logger config: the typed arguments of ``target``, built for one run."""

    target: ClassVar[type[Logger]]
    requires: ClassVar[str | None] = None  # the package the logger writes through (an optional install)

    def __post_init__(self) -> None:
        name = self.name_in_registry()
        if self.requires and importlib.util.find_spec(self.requires) is None:
            raise ConfigError(
                f"logger={name} needs the {self.requires} package; install it with pip install 'genlab[trackers]'"
            )
        check_annotations(self, f"logger.{name}")
        if hasattr(self, "save_dir"):
            require(bool(str(self.save_dir).strip()), f"logger.{self.name_in_registry()}.save_dir is empty")

    @classmethod
    def name_in_registry(cls) -> str:
        return next((name for name, config in LOGGERS.items() if config is cls), cls.__name__)

    def arguments(self, context: RunContext) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def build(self, context: RunContext) -> Logger:
        return self.target(**self.arguments(context))


def logger_config(
    name: str, target: type[Logger], defaults: Mapping[str, Any], base: type = LoggerConfig, exclude=()
):
    """A frozen config dataclass with every argument of ``target`` (but ``exclude``), on ``base``."""
    owned = {key: "set by genlab for the run" for key in exclude}
    return dataclasses.make_dataclass(
        name,
        signature_fields(target, exclude=owned, defaults=defaults),
        bases=(base,),
        frozen=True,
        namespace={"__module__": __name__, "target": target, "__doc__": f"``logger``: {target.__name__}."},
    )


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


class TensorBoardBase(LoggerConfig):
    def arguments(self, context: RunContext) -> dict[str, Any]:
        # a resumed run hides the events its previous process wrote after the checkpoint: continuous curves
        purge = None if context.resume_step is None else context.resume_step + 1
        return {**dataclasses.asdict(self), "purge_step": purge}


class MLflowBase(LoggerConfig):
    requires = "mlflow"

    def arguments(self, context: RunContext) -> dict[str, Any]:
        args = dataclasses.asdict(self)
        if not args["tracking_uri"]:  # a local store beside the runs: works offline, `mlflow ui` reads it
            args["tracking_uri"] = os.environ.get("MLFLOW_TRACKING_URI") or (
                f"sqlite:///{(context.output_dir / 'mlflow.db').resolve()}"
            )
        args["experiment_name"] = args["experiment_name"] or context.sweep or "genlab"
        args["run_name"] = args["run_name"] or context.job or context.run_dir.name
        return {**args, "tags": {**(args.get("tags") or {}), **context.tags}}


class WandbBase(LoggerConfig):
    requires = "wandb"

    def arguments(self, context: RunContext) -> dict[str, Any]:
        args = dataclasses.asdict(self)
        if args["offline"] is None:  # no key: files that `wandb sync` uploads later
            args["offline"] = not os.environ.get("WANDB_API_KEY")
        args["project"] = args["project"] or "genlab"
        args["group"] = context.sweep
        args["name"] = args["name"] or context.job or context.run_dir.name
        tags = [
            f"{k}={v}" for k, v in context.tags.items() if k != "genlab.run_dir"
        ]  # W&B: 64 characters a tag
        return {**args, "tags": sorted(tag[:64] for tag in tags)}


TensorBoardConfig = logger_config(
    "TensorBoardConfig",
    RunTensorBoardLogger,
    {"save_dir": ".", "name": "tensorboard", "version": "", "default_hp_metric": False},
    base=TensorBoardBase,
)
CSVConfig = logger_config("CSVConfig", CSVLogger, {"save_dir": ".", "name": "csv", "version": ""})
MLflowConfig = logger_config(
    "MLflowConfig",
    MLFlowLogger,
    {"experiment_name": None, "save_dir": None},
    base=MLflowBase,
    exclude=("tags", "run_id"),
)
WandbConfig = logger_config(
    "WandbConfig",
    WandbLogger,
    {"offline": None, "save_dir": ".", "log_model": False},
    base=WandbBase,
    exclude=("experiment", "id", "version", "anonymous"),
)

LOGGERS = Registry(
    "logger",
    {"tensorboard": TensorBoardConfig, "csv": CSVConfig, "mlflow": MLflowConfig, "wandb": WandbConfig},
)


def log_images(loggers: list[Logger], grids: Mapping[str, Tensor], step: int) -> None:
    """Each (3, H, W) float grid in [0, 1] to every logger that shows images, as ``images/<name>``."""
    for logger in loggers:
        for name, grid in grids.items():
            key = f"images/{name}"
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(key, grid, global_step=step)
            elif isinstance(logger, MLFlowLogger):
                image = (grid.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
                logger.experiment.log_image(logger.run_id, image, key=key.replace("/", "."), step=step)
            elif isinstance(logger, WandbLogger):
                logger.log_image(key=key, images=[grid.clamp(0, 1).cpu()], step=step)

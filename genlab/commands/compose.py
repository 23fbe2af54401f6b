"""Compose a genlab config without the CLI (tests, notebooks, benchmark scripts)."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from genlab.commands.help import register_resolvers
from genlab.run.sections import store_trainer_schema

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def compose_config(
    name: str = "train",
    overrides: list[str] | None = None,
    run_dir: str | Path | None = None,
    return_hydra: bool = False,
) -> DictConfig:
    """The config ``genlab <name> <overrides>`` would run; ``run_dir`` stands in for Hydra's output dir."""
    register_resolvers()
    store_trainer_schema()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR), job_name=name):
        cfg = compose(config_name=name, overrides=list(overrides or []), return_hydra_config=return_hydra)
    if run_dir is not None:
        with open_dict(cfg):
            cfg.paths.run_dir = str(run_dir)
    return cfg

"""Check a composed config against typed schemas before anything heavy starts.

``dataset`` and ``model`` are checked against the ``config_class`` dataclass of their ``_target_`` class
(types and unknown keys through OmegaConf's structured configs, values through ``__post_init__``),
``optimizer`` against :class:`genlab.optim.OptimizerConfig`. Every problem becomes one ConfigError line
that names the key, the bad value and what is allowed.
"""

from __future__ import annotations

import os
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from genlab.errors import ConfigError
from genlab.optim import OptimizerConfig


def check_against(
    schema: type, node: DictConfig | dict, prefix: str, drop: tuple[str, ...] = ("_target_",)
) -> Any:
    """Merge ``node`` into the structured ``schema`` and build it; return the typed object."""
    data = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    data = {k: v for k, v in data.items() if k not in drop}
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), data)
        return OmegaConf.to_object(merged)
    except ConfigError:
        raise
    except ConfigKeyError as e:
        allowed = ", ".join(f.name for f in schema.__dataclass_fields__.values())
        raise ConfigError(f"{prefix}.{e.key} is not a known key of {prefix}; allowed keys: {allowed}") from e
    except ValidationError as e:
        key = f"{prefix}.{e.full_key}" if e.full_key else prefix
        field = schema.__dataclass_fields__.get(str(e.full_key).split(".")[0])
        expected = getattr(field.type, "__name__", str(field.type)) if field else "another type"
        raise ConfigError(f"{key}={e.value!r} has the wrong type: expected {expected}") from e
    except OmegaConfBaseException as e:
        raise ConfigError(f"{prefix}: {str(e).splitlines()[0]}") from e


def target_class(node: DictConfig, group: str) -> type:
    target = node.get("_target_") if node is not None else None
    if not target:
        raise ConfigError(f"{group}._target_ is missing; choose a {group} with {group}=<name>")
    try:
        return get_class(target)
    except Exception as e:  # noqa: BLE001 - hydra wraps import errors in several types
        raise ConfigError(f"{group}._target_={target!r} cannot be imported") from e


def _check_positive(cfg: DictConfig, key: str) -> None:
    value = OmegaConf.select(cfg, key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
        raise ConfigError(f"{key}={value!r} must be a positive number")


def validate_config(cfg: DictConfig) -> dict[str, Any]:
    """Validate the composed train config; returns the typed dataset/model/optimizer configs."""
    for group in ("dataset", "model", "optimizer", "trainer"):
        if group not in cfg or cfg[group] is None:
            raise ConfigError(f"config group '{group}' is missing; choose one with {group}=<name>")
    dataset_cls = target_class(cfg.dataset, "dataset")
    model_cls = target_class(cfg.model, "model")
    typed = {
        "dataset": check_against(dataset_cls.config_class, cfg.dataset, "dataset"),
        "model": check_against(model_cls.config_class, cfg.model, "model"),
        "optimizer": check_against(OptimizerConfig, cfg.optimizer, "optimizer"),
    }
    _check_positive(cfg, "trainer.max_steps")
    data_dir = OmegaConf.select(cfg, "paths.data_dir")
    if getattr(typed["dataset"], "download", True) is False and data_dir and not os.path.isdir(data_dir):
        raise ConfigError(
            f"paths.data_dir={data_dir!r} does not exist and dataset.download=false; "
            f"point paths.data_dir (or GENLAB_DATA_DIR) at your data or set dataset.download=true"
        )
    return typed

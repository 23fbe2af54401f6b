"""Typed configs from plain data: one place that turns a mapping into a frozen config dataclass.

Types and unknown keys are checked by OmegaConf's structured configs, value ranges by the dataclass's own
``__post_init__``. Every problem becomes one :class:`~genlab.utils.errors.ConfigError` line naming the key, the
bad value and what is allowed. A composed Hydra config becomes plain data once, in :func:`plain_config`
(``genlab train``'s run, the tool commands' :func:`command_config`).
"""

from __future__ import annotations

import dataclasses
import difflib
import keyword
import math
from collections.abc import Mapping
from typing import Any, TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import (
    ConfigKeyError,
    MissingMandatoryValue,
    OmegaConfBaseException,
    ValidationError,
)

from genlab.utils.errors import ConfigError

T = TypeVar("T")


def plain_config(cfg: Any) -> dict[str, Any]:
    """A composed Hydra config as plain containers, interpolations resolved; a required key left unset or an
    interpolation that cannot be resolved is one ConfigError line naming the key."""
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as e:
        raise ConfigError(f"{e.full_key} is required: pass {e.full_key}=<value>") from e
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None)
        first = " ".join(str(e).strip().splitlines()[0].split())[:200]
        raise ConfigError(f"{key}: {first}" if key else first) from e


def command_config(schema: type[T], cfg: Any) -> T:
    """A tool command's typed config from its composed Hydra config (``paths`` is not its own key: the
    command's keys that need a path interpolate it)."""
    raw = plain_config(cfg)
    raw.pop("paths", None)
    return build_typed(schema, raw, "")


def build_typed(schema: type[T], data: Mapping[str, Any] | None, prefix: str) -> T:
    """``schema(**data)`` with every key and type checked; ``prefix`` is the config path (``model``)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix} must be a mapping of keys to values, not {data!r}")
    data = {field_name(k) if isinstance(k, str) else k: v for k, v in data.items()}
    try:
        base = OmegaConf.structured(schema)
        writable(base)
        return OmegaConf.to_object(OmegaConf.merge(base, dict(data)))
    except ConfigError:
        raise
    except ConfigKeyError as e:
        owner = e.object_type if dataclasses.is_dataclass(e.object_type) else schema  # a nested section's
        key = join(prefix, e.full_key or e.key)
        names = [key_name(f.name) for f in dataclasses.fields(owner)]
        where = f" of {key.rpartition('.')[0]}" if "." in key else ""
        hint = closest(key.rpartition(".")[2], names)
        raise ConfigError(
            f"{key} is not a known key{where}; {hint + ' ' if hint else ''}allowed keys: {', '.join(names)}"
        ) from e
    except ValidationError as e:
        if not e.full_key:  # a plain value where a nested section belongs (eval=abc)
            nested = OmegaConf.structured(schema)
            bad = [
                k for k, v in data.items() if OmegaConf.is_dict(nested.get(k)) and not isinstance(v, Mapping)
            ]
            key = join(prefix, bad[0] if bad else "?")
            value = data.get(bad[0]) if bad else None
            raise ConfigError(
                f"{key}={value!r} must be a mapping of keys to values; set them one by one ({key}.<key>=<value>)"
            ) from e
        key = join(prefix, e.full_key)
        owner = e.object_type if dataclasses.is_dataclass(e.object_type) else schema
        name = str(e.full_key).split(".")[-1].split("[")[0]  # g_hidden[0] -> the field g_hidden
        field = {f.name: f for f in dataclasses.fields(owner)}.get(name)
        expected = type_name(field.type) if field else "another type"
        raise ConfigError(f"{key}={e.value!r} has the wrong type: expected {expected}") from e
    except OmegaConfBaseException as e:
        raise ConfigError(f"{prefix}: {str(e).splitlines()[0]}") from e
    except (TypeError, ValueError) as e:  # a value OmegaConf accepted but the dataclass cannot hold
        raise ConfigError(f"{prefix}: {str(e).splitlines()[0]}") from e


def closest(name: str, names: list[str]) -> str:
    """``did you mean <name>?`` for the closest of ``names``, or '' when none is close."""
    match = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f"did you mean {match[0]}?" if match else ""


def field_name(key: str) -> str:
    """The dataclass field behind a config key: a key that is a Python keyword (``class``) is a field with a
    trailing underscore (``class_``)."""
    return f"{key}_" if keyword.iskeyword(key) else key


def key_name(field: str) -> str:
    """The config key of a dataclass field (the inverse of :func:`field_name`)."""
    return field[:-1] if field.endswith("_") and keyword.iskeyword(field[:-1]) else field


def join(prefix: str, key: object) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def writable(node: Any) -> None:
    """Frozen dataclasses give read-only nodes (nested ones too): allow the merge; the result is frozen again."""
    OmegaConf.set_readonly(node, False)
    if OmegaConf.is_dict(node):
        for key in node:
            child = node._get_node(key)
            if OmegaConf.is_config(child):
                writable(child)


def type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "")


def to_plain(config: Any) -> dict[str, Any]:
    """A typed config as plain containers (for checkpoints, JSON and YAML)."""
    return dataclasses.asdict(config)


def set_field(config: Any, name: str, value: Any) -> None:
    """Normalize a field of a frozen config inside its own ``__post_init__``."""
    object.__setattr__(config, name, value)


# ---- range checks shared by every typed config -------------------------------------------------
def require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def check_choice(key: str, value: Any, allowed: Any) -> None:
    require(value in allowed, f"{key}={value!r} is not known; allowed: {', '.join(map(str, allowed))}")


def check_positive(key: str, value: Any, example: Any) -> None:
    require(
        is_number(value) and value > 0 and math.isfinite(value),
        f"{key}={value} must be a finite number > 0 (e.g. {key}={example})",
    )


def check_at_least(key: str, value: Any, low: float, example: Any) -> None:
    require(
        is_number(value) and value >= low and math.isfinite(value),
        f"{key}={value} must be a finite number >= {low} (e.g. {key}={example})",
    )


def check_seed(key: str, value: Any, example: int) -> None:
    require(
        is_number(value) and 0 <= value < 2**32,
        f"{key}={value} must be a whole number in [0, 2**32) (e.g. {key}={example})",
    )


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)

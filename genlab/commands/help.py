"""The key tables of ``genlab <command> --help``, generated from the typed configs.

Each row is a key of the composed config (with the overrides given on the command line, so
``genlab train model=vae --help`` lists the VAE's keys), its configured value, and its meaning: the
field's ``help`` metadata, else the comment written on or directly above the field in its dataclass (the
project's way of documenting config fields). The table reaches Hydra's help template through the
``${genlab_keys:<command>}`` resolver (``configs/hydra/help/<command>.yaml``), so ``--help`` stays Hydra's.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import io
import textwrap
import tokenize
from typing import Any

from omegaconf import OmegaConf

from genlab.config.schema import field_name
from genlab.utils.hydra_context import job_label

RESOLVER = "genlab_keys"
JOB_LABEL_RESOLVER = "genlab_job_label"
MAX_VALUE = 32  # characters of a value shown before it is cut


# keys that are not the user's to set
HIDDEN = {"train": {"task"}, "sample": {"task", "paths.run_dir"}, "eval": {"task", "paths.run_dir"}}


@functools.cache
def field_comments(cls: type) -> dict[str, str]:
    """The comment on each field's line, or the comment lines directly above it, in ``cls`` and its bases."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # bases first: a subclass's own comment wins
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):  # no source (frozen app, REPL class): only metadata help
            continue
        comments: dict[int, tuple[str, bool]] = {}  # line -> (text, the comment is the whole line)
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                whole = token.line.strip().startswith("#")
                comments[token.start[0]] = (token.string.lstrip("#").strip(), whole)
        for node in ast.parse(source).body[0].body:
            if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
                continue
            above, line = [], node.lineno - 1
            while line in comments and comments[line][1]:
                above.insert(0, comments[line][0])
                line -= 1
            trailing = comments.get(node.lineno, ("", True))
            text = " ".join(above) or ("" if trailing[1] else trailing[0])
            if text:
                out[node.target.id] = text
    return out


def field_help(cls: type, name: str) -> str:
    """The meaning of field ``name`` of the config dataclass ``cls`` ('' when it has none)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name in fields and fields[name].metadata.get("help"):
        return str(fields[name].metadata["help"])
    return field_comments(cls).get(name, "")


def train_sections(cfg: dict[str, Any]) -> list[tuple[str, str, type | None, Any]]:
    """(title, key prefix, typed config, composed values) of every part of a ``genlab train`` config."""
    from genlab.data import DATASETS
    from genlab.models import MODELS
    from genlab.models.optim import OptimizerConfig
    from genlab.run.callbacks import CALLBACKS
    from genlab.run.config import GROUPS
    from genlab.run.loggers import LOGGERS
    from genlab.run.sections import PathsConfig, RunSettings, TrainerConfig

    sections: list[tuple[str, str, type | None, Any]] = [
        ("top-level keys", "", RunSettings, {k: v for k, v in cfg.items() if k not in GROUPS})
    ]
    model = dict(cfg.get("model") or {})
    family = model.get("family")
    model_cls = MODELS.get(family) if isinstance(family, str) else None
    sections.append((f"model={family}", "model", getattr(model_cls, "config_class", None), model))
    dataset = dict(cfg.get("dataset") or {})
    name = dataset.get("name")
    dataset_cls = DATASETS.get(name) if isinstance(name, str) else None
    sections.append((f"dataset={name}", "dataset", getattr(dataset_cls, "config_class", None), dataset))
    sections.append(("optimizer", "optimizer", OptimizerConfig, cfg.get("optimizer") or {}))
    sections.append(("trainer", "trainer", TrainerConfig, cfg.get("trainer") or {}))
    for group, registry in (("callbacks", CALLBACKS), ("logger", LOGGERS)):
        for entry, values in (cfg.get(group) or {}).items():
            known = registry.get(entry)
            schema = known if group == "logger" else getattr(known, "config_class", None)
            sections.append((f"{group}.{entry}", f"{group}.{entry}", schema, values or {}))
    sections.append(("paths", "paths", PathsConfig, cfg.get("paths") or {}))
    return sections


def tool_sections(command: str, cfg: dict[str, Any]) -> list[tuple[str, str, type | None, Any]]:
    from genlab.run.sections import PathsConfig

    if command == "sample":
        from genlab.commands.sample import SampleConfig as schema
    else:
        from genlab.commands.evaluate import EvalCommand as schema
    own = {k: v for k, v in cfg.items() if k != "paths"}
    return [
        ("keys (set with key=value)", "", schema, own),
        ("paths", "paths", PathsConfig, cfg.get("paths") or {}),
    ]


def key_rows(command: str, cfg: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(section title, key, value, meaning) for every key of the composed (unresolved) config ``cfg``."""
    sections = train_sections(cfg) if command == "train" else tool_sections(command, cfg)
    rows: list[tuple[str, str, str, str]] = []
    for title, prefix, schema, values in sections:
        rows += section_rows(title, prefix, schema, values, HIDDEN.get(command, set()))
    return rows


def section_rows(
    title: str, prefix: str, schema: type | None, values: Any, hidden: set[str]
) -> list[tuple[str, str, str, str]]:
    rows = []
    if not isinstance(values, dict):
        return [(title, prefix, show(values), "")]
    fields = {f.name: f for f in dataclasses.fields(schema)} if schema is not None else {}
    for key_part, value in values.items():
        key = f"{prefix}.{key_part}" if prefix else key_part
        if key in hidden:
            continue
        name = field_name(key_part)  # `class` is the field class_
        nested = fields[name].type if name in fields else None
        nested_cls = schema_of(schema, name) if nested is not None else None
        if isinstance(value, dict) and nested_cls is not None:
            rows += section_rows(title, key, nested_cls, value, hidden)
            continue
        if name == "family" and prefix == "model":
            meaning = "the model family: gan | vae | classifier (set it with model=<family>)"
        else:
            meaning = field_help(schema, name) if name in fields else ""
        rows.append((title, key, show(value), meaning))
    return rows


def schema_of(schema: type, name: str) -> type | None:
    """The dataclass type of a nested config field (``EvalCommand.eval`` -> ``EvalConfig``), else None."""
    import typing

    hint = typing.get_type_hints(schema).get(name)
    return hint if dataclasses.is_dataclass(hint) else None


def show(value: Any) -> str:
    if value is None:
        return "null"
    if value == "???":
        return "required"
    if isinstance(value, bool):
        return str(value).lower()
    if value == "":
        return "''"
    text = str(value).replace("'", "")
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 3] + "..."


def format_rows(rows: list[tuple[str, str, str, str]]) -> str:
    """Rows grouped under their section titles, keys and values in columns aligned within each section."""
    sections: dict[str, list[tuple[str, str, str]]] = {}
    for title, key, value, meaning in rows:
        sections.setdefault(title, []).append((key, value, meaning))
    blocks = []
    for title, section in sections.items():
        key_w = max(len(key) for key, _, _ in section)
        value_w = max(len(value) for _, value, _ in section)
        lines = [f"{title}:"]
        lines += [
            f"  {key:<{key_w}}  {value:<{value_w}}  {meaning}".rstrip() for key, value, meaning in section
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def key_table(command: str, root: Any) -> str:
    """The table for Hydra's help template: the composed config without its ``hydra`` node."""
    cfg = OmegaConf.to_container(root, resolve=False) if OmegaConf.is_config(root) else dict(root)
    cfg.pop("hydra", None)
    # Hydra feeds the template through string.Template: a literal $ (interpolations) must be doubled
    return format_rows(key_rows(command, cfg)).replace("$", "$$")


def register_resolvers() -> None:
    """genlab's OmegaConf resolvers (idempotent): ``${genlab_keys:<command>}`` in the help templates and
    ``${genlab_job_label:}`` in ``hydra.sweep.subdir``."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(
            RESOLVER, lambda command, *, _root_: key_table(str(command), _root_), use_cache=False
        )
    if not OmegaConf.has_resolver(JOB_LABEL_RESOLVER):
        OmegaConf.register_new_resolver(JOB_LABEL_RESOLVER, job_label)

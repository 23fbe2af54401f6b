"""Typed configs derived from a library's own signature, so that genlab never narrows what the library takes.

:func:`signature_fields` turns every keyword argument of a callable (e.g. ``pytorch_lightning.Trainer``) into a
dataclass field: its name, the library's default (or genlab's, where genlab has its own), and the library's
annotation and docstring line as field metadata. :func:`check_annotations` then checks each value against the
annotation's plain members (None, bool, int, float, str, lists, dicts, literals): a class such as a Strategy or
a Profiler object cannot come from a config file, so only its string alias is accepted.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, Union

from genlab.config.schema import require

PLAIN_NAMES = {type(None): "null", bool: "bool", int: "int", float: "float", str: "str"}


def signature_fields(
    target: Callable[..., Any], exclude: Mapping[str, str], defaults: Mapping[str, Any]
) -> list[tuple[str, Any, dataclasses.Field]]:
    """``(name, Any, field)`` for every keyword argument of ``target`` (a class: its ``__init__``) not in
    ``exclude`` (arguments genlab passes itself), for :func:`dataclasses.make_dataclass`; ``defaults`` replaces the
    library's default of a name."""
    init = target.__init__ if isinstance(target, type) else target
    parameters = inspect.signature(init).parameters
    unknown = set(defaults) - set(parameters)
    if unknown:  # genlab's defaults name arguments the library no longer has
        raise TypeError(f"{target.__qualname__} has no argument {', '.join(sorted(unknown))}")
    hints = annotations_of(init)
    classes = reversed(target.__mro__) if isinstance(target, type) else ()
    helps = {k: v for source in (*classes, init) for k, v in docstring_args(source).items()}
    out = []
    for name, param in parameters.items():
        if name == "self" or name in exclude or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = defaults.get(name, param.default)
        if default is inspect.Parameter.empty:
            raise TypeError(f"{target.__qualname__}({name}) has no default: give it one in genlab's defaults")
        annotation = hints.get(name, Any)
        if not accepts(
            annotation, default
        ):  # genlab's own default (None: decided for the run) widens the type
            annotation = Union[annotation, type(default)]  # noqa: UP007 - built at run time from an object
        metadata = {"annotation": annotation, "help": helps.get(name, "")}
        if isinstance(default, list | dict):
            field = dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=metadata)
        else:
            field = dataclasses.field(default=default, metadata=metadata)
        out.append((name, Any, field))
    return out


def annotations_of(target: Callable[..., Any]) -> dict[str, Any]:
    """The evaluated annotations of ``target``'s arguments; where one names a type its module cannot resolve
    (a forward reference to an optional dependency), each argument's own annotation, unresolved ones as Any."""
    try:
        return typing.get_type_hints(target)
    except (NameError, TypeError):
        params = inspect.signature(target).parameters.values()
        return {p.name: Any if isinstance(p.annotation, str) else p.annotation for p in params}


def docstring_args(target: Callable[..., Any]) -> dict[str, str]:
    """The first sentence of each argument's description in a Google-style ``Args:`` docstring section."""
    doc = inspect.getdoc(target) or ""
    section = doc.split("Args:", 1)[1] if "Args:" in doc else ""
    out: dict[str, str] = {}
    for match in re.finditer(r"^\s{0,4}(\w+):\s*(.+?)(?=^\s{0,4}\w+:|\Z)", section, re.S | re.M):
        text = " ".join(match.group(2).split())
        out[match.group(1)] = re.split(r"(?<=\.)\s", text, maxsplit=1)[0].replace("``", "")
    return out


def check_annotations(config: Any, prefix: str) -> None:
    """Every field whose metadata carries an annotation holds a plain value of that annotation."""
    for field in dataclasses.fields(config):
        annotation = field.metadata.get("annotation")
        if annotation is None:
            continue
        value = getattr(config, field.name)
        require(
            accepts(annotation, value),
            f"{prefix}.{field.name}={value!r} has the wrong type: expected {describe(annotation)}",
        )


def accepts(annotation: Any, value: Any) -> bool:
    """Whether ``value`` (plain data from a config) is an instance of ``annotation``'s plain members."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(accepts(arg, value) for arg in args)
    if origin is Literal:
        return any(value == arg and type(value) is type(arg) for arg in args)
    if origin in (list, collections.abc.Sequence, collections.abc.Iterable):
        return isinstance(value, list) and all(accepts(args[0] if args else Any, v) for v in value)
    if origin in (dict, collections.abc.Mapping):
        key_type, value_type = args or (Any, Any)
        return isinstance(value, dict) and all(
            accepts(key_type, k) and accepts(value_type, v) for k, v in value.items()
        )
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation in PLAIN_NAMES:
        return type(value) is annotation
    return False  # a class (an accelerator, a timedelta, a profiler object): not something a config holds


def describe(annotation: Any) -> str:
    """The plain members of an annotation, as a user would write them (``int | float | null``)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        parts = [describe(arg) for arg in args]
        return " | ".join(dict.fromkeys(p for p in parts if p))
    if origin is Literal:
        return " | ".join(repr(arg) for arg in args)
    if origin in (list, collections.abc.Sequence, collections.abc.Iterable):
        return f"a list of {describe(args[0]) if args else 'values'}"
    if origin in (dict, collections.abc.Mapping):
        return "a mapping"
    if annotation is Any:
        return "any value"
    return PLAIN_NAMES.get(annotation, "")

"""The one registry type: a read-only name -> entry table whose lookups fail in one line.

Each registry lives beside what it registers (:data:`genlab.models.MODELS`, :data:`genlab.data.DATASETS`,
:data:`genlab.run.callbacks.CALLBACKS`, :data:`genlab.run.loggers.LOGGERS`). A name read from anywhere (the
command line, a checkpoint's run record, a run directory) is only ever looked up in one of them; genlab never
imports or instantiates a dotted path that came from a file. Validation messages and ``--help`` list the
allowed names from these tables.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

from genlab.utils.errors import ConfigError

V = TypeVar("V")


class Registry(Mapping[str, V], Generic[V]):
    """A read-only name -> entry table whose lookups fail with one line naming the allowed names."""

    def __init__(self, key: str, entries: dict[str, V]) -> None:
        self.key = key  # how the user sets it, e.g. "model.family"
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> V:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def get_checked(self, name: object, error: type[Exception] = ConfigError) -> V:
        if not isinstance(name, str) or name not in self._entries:
            raise error(f"{self.key}={name!r} is not known; allowed: {', '.join(sorted(self._entries))}")
        return self._entries[name]

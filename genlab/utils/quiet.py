"""Less noise on the console: library banners that say nothing about the run, and no colour codes in logs.

:func:`quiet` is called once by ``genlab`` (``genlab.cli.main``) before any command runs. It uses public
logging and environment switches only; real warnings (``warnings.warn``, ``log.warning``) still show:

- Lightning's info lines about the machine ("GPU available: ...", "TPU available: ...", "HPU available")
  and its "💡 Tip:" advertisements (litlogger, litmodels) are dropped by a filter on its ``rank_zero`` logger;
- Optuna's storage backend (alembic) announces each of its plugins at INFO: that logger is set to WARNING;
- when stderr is not a terminal, ``NO_COLOR=1`` (https://no-color.org) makes colorlog (Optuna's log
  formatter) and rich write plain text instead of ANSI escape codes.

The model summary without the empty FLOPs column is :class:`genlab.run.callbacks.summary.ModelSummary`.

The message prefixes below are Lightning's private wording: ``tests/test_quiet.py`` fails when they change.
(These would sit in ``genlab/compat.py`` with the project's other private details.)
"""

from __future__ import annotations

import logging
import os
import sys

# the loggers Lightning's rank_zero_info writes through (standalone package and the unified one)
LIGHTNING_INFO_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero")
# Lightning's info lines that carry no information about the run
LIGHTNING_NOISE = (
    "GPU available:",
    "TPU available:",
    "HPU available:",
    "💡 Tip:",  # "try installing litlogger / litmodels"
    "Trainer already configured with model summary callbacks",  # genlab passes its own summary on purpose
)
# libraries that log routine INFO lines when Optuna starts
CHATTY_LOGGERS = ("alembic",)


class DropMessages(logging.Filter):
    """Drops log records whose message starts with one of ``prefixes``."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().lstrip().startswith(self.prefixes)


def quiet(stream=None) -> None:
    """Install the filters and switches above (idempotent)."""
    for name in LIGHTNING_INFO_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropMessages) for f in logger.filters):
            logger.addFilter(DropMessages(LIGHTNING_NOISE))
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    stream = sys.stderr if stream is None else stream
    if not is_terminal(stream) and "FORCE_COLOR" not in os.environ:
        os.environ.setdefault("NO_COLOR", "1")


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False

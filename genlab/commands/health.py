"""``genlab health <run dir> [<run dir> ...]``: print each run's training-health verdicts (``health.json``)."""

from __future__ import annotations

import sys

from genlab.health.record import format_health, read_health
from genlab.utils.errors import GenlabError

USAGE = "usage: genlab health <run dir> [<run dir> ...]"


def health(args: list[str]) -> int:
    """Every run's verdicts; a run whose record cannot be read costs one line on stderr, the others are still
    printed, and the exit code is 2 when any could not be read."""
    if not args or any(a in ("-h", "--help") for a in args):
        print(f"{USAGE}\n\nPrints the verdict of each health detector of a finished (or stopped) run.")
        return 0
    flags = [a for a in args if a.startswith("-")]
    if flags:
        raise GenlabError(f"unknown option {flags[0]}; {USAGE}")
    failed = printed = 0
    for run_dir in args:
        try:
            record = read_health(run_dir)
        except GenlabError as e:
            print(f"genlab health: error: {' '.join(str(e).split())}", file=sys.stderr)
            failed += 1
            continue
        if printed:
            print()
        print(f"{run_dir}: " + "\n".join(format_health(record)))
        printed += 1
    return 2 if failed else 0

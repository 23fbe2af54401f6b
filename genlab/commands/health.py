"""``genlab health <run dir> [<run dir> ...]``: print each run's training-health verdicts (``health.json``)."""

from __future__ import annotations

from genlab.health.record import format_health, read_health
from genlab.utils.errors import GenlabError

USAGE = "usage: genlab health <run dir> [<run dir> ...]"


def health(args: list[str]) -> int:
    if not args or any(a in ("-h", "--help") for a in args):
        print(f"{USAGE}\n\nPrints the verdict of each health detector of a finished (or stopped) run.")
        return 0
    flags = [a for a in args if a.startswith("-")]
    if flags:
        raise GenlabError(f"unknown option {flags[0]}; {USAGE}")
    for i, run_dir in enumerate(args):
        record = read_health(run_dir)
        if i:
            print()
        print(f"{run_dir}: " + "\n".join(format_health(record)))
    return 0

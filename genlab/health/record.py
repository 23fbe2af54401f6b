"""``health.json``: each detector's verdict for a run (written atomically at the end of training, read by
``genlab health`` and ``genlab report``).

    {"version": 1, "family": "gan", "healthy": false,
     "detectors": [{"name": "d_wins", "fired": true, "first_step": 1200, "last_step": 3400,
                    "message": "discriminator wins (...): try model.r1_gamma=1, ..."}, ...]}

A run directory is untrusted input: :func:`read_health` reads through genlab's run-dir reader, checks the shape
and fails in one line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from genlab.utils.atomic import write_json_atomic
from genlab.utils.errors import GenlabError
from genlab.utils.rundir import HEALTH_NAME, read_json

VERSION = 1


@dataclass
class Verdict:
    """One detector over a run: whether it fired, the first and last step its condition held, its message."""

    name: str
    fired: bool = False
    first_step: int | None = None
    last_step: int | None = None
    message: str | None = None

    def record(self, step: int, message: str) -> bool:
        """The condition holds at ``step``; True the first time (when the monitor warns)."""
        first = not self.fired
        if first:
            self.fired, self.first_step, self.message = True, step, message
        self.last_step = step if self.last_step is None else max(self.last_step, step)
        return first


def health_record(family: str, verdicts: list[Verdict]) -> dict[str, Any]:
    return {
        "version": VERSION,
        "family": family,
        "healthy": not any(v.fired for v in verdicts),
        "detectors": [asdict(v) for v in verdicts],
    }


def write_health(run_dir: str | Path, record: dict[str, Any]) -> Path:
    path = Path(run_dir) / HEALTH_NAME
    write_json_atomic(path, record)
    return path


def read_health(run_dir: str | Path) -> dict[str, Any]:
    """The verdicts of a run directory (``GenlabError`` in one line when missing or malformed)."""
    run_dir = Path(run_dir)
    path = run_dir / HEALTH_NAME
    if not run_dir.is_dir():
        raise GenlabError(f"{run_dir} is not a directory; pass a run directory (outputs/runs/<run>)")
    try:
        record = read_json(path, within=run_dir)
    except FileNotFoundError:
        raise GenlabError(
            f"{path} does not exist: the run has not ended yet, predates the health monitor, or ran with "
            "callbacks.health.enabled=false"
        ) from None
    except (OSError, ValueError) as e:  # RunFileError, JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise GenlabError(f"{path} cannot be read ({' '.join(str(e).split())[:100]})") from e
    detectors = record.get("detectors") if isinstance(record, dict) else None
    if (
        not isinstance(detectors, list)
        or not all(isinstance(d, dict) and isinstance(d.get("name"), str) for d in detectors)
        or record.get("version") != VERSION
    ):
        raise GenlabError(f"{path} is not a version-{VERSION} health record")
    return record


def format_health(record: dict[str, Any]) -> list[str]:
    """Lines for the terminal: one verdict per detector, the fired ones first."""
    detectors = sorted(record["detectors"], key=lambda d: not d.get("fired"))
    lines = [f"{record.get('family', '?')} run: {'healthy' if record.get('healthy') else 'UNHEALTHY'}"]
    for d in detectors:
        if d.get("fired"):
            steps = f"steps {d.get('first_step')}-{d.get('last_step')}"
            lines.append(f"  FIRED  {d['name']:<20} {steps}: {d.get('message')}")
        else:
            lines.append(f"  ok     {d['name']}")
    return lines

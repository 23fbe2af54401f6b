"""Finding run directories and reading what each one records, as plain data.

A run directory (``genlab train``'s ``hydra.run.dir``, or one job of a sweep) is what
:mod:`genlab.utils.rundir` finds and describes; this module adds what the report shows. Every file is read
through the run-dir reader (regular files only, size-capped, depth-limited): a missing, damaged or crafted file
becomes a note on that run, never an exception, a hang or an exhausted memory, because a report is often made
while runs are still being written (or after they crashed), and of run dirs someone else made.
"""

from __future__ import annotations

import functools
import glob
import math
import os
import shlex
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from genlab.utils import rundir
from genlab.utils.errors import GenlabError
from genlab.utils.rundir import (
    HEALTH_NAME,
    METRICS_NAME,
    STATUSES,
    parse_yaml,
    read_json,
    read_text,
    read_yaml,
)

MAX_DEPTH = 3  # outputs/ -> multirun/ -> <date>/ -> <job>
# overrides that name where a run lives or how it was continued, not what it trained
NOT_SETTINGS = ("hydra.", "hydra/", "resume", "ckpt_path")


@dataclass
class Run:
    """What one run directory records (filled by :func:`read_run`)."""

    path: Path
    label: str = ""
    on_disk: rundir.Run | None = None  # the run directory as genlab.utils.rundir describes it
    overrides: list[str] = field(default_factory=list)
    status: str = "unknown"
    error: str | None = None
    metrics: dict[str, float] = field(
        default_factory=dict
    )  # final numbers: metrics.json + eval/* (eval.json)
    steps: int | None = None
    steps_final: bool = False  # from metrics.json (else status.json's, which a crash leaves behind)
    wall_s: float | None = None
    config_text: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    hydra: dict[str, Any] = field(default_factory=dict)
    health: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)  # what could not be read, shown in the leaderboard

    @property
    def settings(self) -> dict[str, str]:
        """The overrides as ``key -> value``, without where-it-lives keys; values in Hydra's canonical form so
        that ``model.ema=true`` (typed) and ``model.ema=True`` (written by a sweep) are the same setting."""
        out = {}
        for line in self.overrides:
            key, value = canonical_override(line)
            if not key.startswith(NOT_SETTINGS):
                out[key] = value
        return out

    @property
    def sweep_dir(self) -> Path | None:
        """The sweep directory this run is a job of (Hydra's ``hydra.sweep.dir``), or None."""
        hydra = self.hydra.get("hydra") if isinstance(self.hydra.get("hydra"), dict) else {}
        if hydra.get("mode") == "MULTIRUN":
            return self.path.parent
        if any(
            (self.path.parent / name).is_file() for name in ("multirun.yaml", "optimization_results.yaml")
        ):
            return self.path.parent
        return None

    @property
    def job_num(self) -> int | None:
        job = (self.hydra.get("hydra") or {}).get("job") or {}
        num = job.get("num") if isinstance(job, dict) else None
        if isinstance(num, int):
            return num
        return int(self.path.name) if self.path.name.isdigit() else None

    def rerun_command(self) -> str:
        """A new run with the same settings (what ``resume=`` added to a continued run is left out)."""
        fresh = [
            o for o in self.overrides if not o.lstrip("+").startswith(("resume=", "ckpt_path=", "hydra."))
        ]
        return " ".join(["genlab", "train", *(shlex.quote(o) for o in fresh)])

    def resume_command(self) -> str:
        return f"genlab train resume={shlex.quote(str(self.path))}"

    def config_value(self, key: str) -> Any:
        return config_value(self.config, key)


@functools.lru_cache(maxsize=8192)
def canonical_override(line: str) -> tuple[str, str]:
    """(key, value as Hydra prints it) of one recorded override; a line Hydra cannot parse is split at ``=``."""
    from hydra.errors import HydraException

    try:
        override = _parser().parse_override(line)
    except HydraException:
        key, _, value = line.partition("=")
        return key.lstrip("+~"), value
    key = override.key_or_group + (f"@{override.package}" if override.package else "")
    return key, "(deleted)" if override.is_delete() else override.get_value_element_as_str()


@functools.cache
def _parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def config_value(config: dict[str, Any], key: str, hops: int = 5) -> Any:
    """``key`` (dotted) in a recorded config; a value that is exactly ``${other.key}`` is followed."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, str) and node.startswith("${") and node.endswith("}") and hops > 0:
        inner = node[2:-1]
        if ":" not in inner and "$" not in inner:  # a plain reference, not a resolver call
            return config_value(config, inner, hops - 1)
        return None
    return node


# ---- finding runs ---------------------------------------------------------------------------------
def find_runs(args: list[str]) -> list[Path]:
    """Run directories named by ``args`` (run dirs, sweep dirs, any folder above them, or globs of these)."""
    found: dict[Path, None] = {}
    for arg in args:
        if glob.has_magic(arg):
            matches = sorted(glob.glob(os.path.expanduser(arg)))
            if not matches:
                raise GenlabError(f"{arg} matches nothing; pass run dirs, sweep dirs or a glob of them")
        else:
            matches = [os.path.expanduser(arg)]
        for match in matches:
            path = Path(match)
            if not path.exists():
                raise GenlabError(
                    f"{arg} does not exist; pass a run dir or a sweep dir (outputs/multirun/<date>)"
                )
            if path.is_dir():
                for run in rundir.find_runs(path, MAX_DEPTH):
                    found.setdefault(run.resolve(), None)
            elif not glob.has_magic(arg):
                raise GenlabError(f"{arg} is a file; pass a run dir or a sweep dir (outputs/multirun/<date>)")
    return list(found)


def labels(paths: list[Path]) -> list[str]:
    """Short names: each path relative to the folder all of them share."""
    if len(paths) == 1:
        return [paths[0].name]
    common = Path(os.path.commonpath([str(p) for p in paths]))
    return [str(p.relative_to(common)) for p in paths]


# ---- reading one run --------------------------------------------------------------------------------
def read_run(path: Path, label: str = "") -> Run:
    run = Run(path=path, label=label or path.name, on_disk=rundir.describe(path))
    if run.on_disk.problem:
        run.notes.append(run.on_disk.problem)
    hydra_dir = path / ".hydra"
    overrides = _read(run, hydra_dir / "overrides.yaml", read_yaml, missing_ok=False)
    if isinstance(overrides, list) and all(isinstance(o, str) for o in overrides):
        run.overrides = overrides
    elif overrides is not None:
        run.notes.append(".hydra/overrides.yaml is not a list of overrides")
    run.config_text = _read(run, hydra_dir / "config.yaml", read_text)
    if run.config_text is not None:
        config = _read(run, hydra_dir / "config.yaml", lambda p, within: parse_yaml(run.config_text))
        run.config = config if isinstance(config, dict) else {}
    hydra = _read(run, hydra_dir / "hydra.yaml", read_yaml)
    run.hydra = hydra if isinstance(hydra, dict) else {}
    _read_status(run)
    _read_metrics(run)
    _read_eval(run)
    _read_health(run)
    return run


def _read(run: Run, path: Path, reader, missing_ok: bool = True) -> Any:
    """``reader(path, within=run dir)``; a missing file is None (noted unless ``missing_ok``), an unreadable
    or refused one a note."""
    name = str(path.relative_to(run.path))
    try:
        return reader(path, within=run.path)
    except FileNotFoundError:
        if not missing_ok:
            run.notes.append(f"no {name}")
        return None
    except (OSError, ValueError) as e:  # RunFileError, JSONDecodeError and UnicodeDecodeError are ValueErrors
        run.notes.append(f"{name} unreadable ({_one_line(e, 80)})")
        return None


def _read_status(run: Run) -> None:
    """status.json as :func:`genlab.utils.rundir.describe` read it (a run no live process holds is "running"
    with a note)."""
    on_disk = run.on_disk
    record = on_disk.record
    if on_disk.record_note:
        run.notes.append(on_disk.record_note)
    if on_disk.status in STATUSES:
        run.status = on_disk.status
    elif on_disk.status == "stale":
        run.status = "running"
        run.notes.append("no live process holds this run (killed?)")
    if run.status in ("failed", "diverged") and record.get("error"):
        run.error = _one_line(record["error"], 500)
    if isinstance(record.get("step"), int):
        run.steps = record["step"]
    started, updated = _time(record.get("started")), _time(record.get("updated"))
    if run.status == "running":
        updated = datetime.now().astimezone()
    try:
        if started and updated and updated >= started:
            run.wall_s = (updated - started).total_seconds()
    except TypeError:  # one time with a UTC offset, one without: not comparable
        pass


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _read_metrics(run: Run) -> None:
    record = _read(run, run.path / METRICS_NAME, read_json)
    if record is None:
        return
    if not isinstance(record, dict):
        run.notes.append(f"{METRICS_NAME} is not a JSON object")
        return
    run.metrics.update(numbers(record, skip=("global_step", "status")))
    if isinstance(record.get("global_step"), int):
        run.steps, run.steps_final = record["global_step"], True
    if run.status == "unknown" and record.get("status") in STATUSES:
        run.status = record["status"]


def _read_eval(run: Run) -> None:
    """``genlab eval``'s report: ``eval.json`` in the run dir or beside its checkpoints (its default place)."""
    for path in (run.path / "eval.json", run.path / "checkpoints" / "eval.json"):
        if os.path.lexists(path):
            record = _read(run, path, read_json)
            metrics = record.get("metrics") if isinstance(record, dict) else None
            if isinstance(metrics, dict):
                run.metrics.update({f"eval/{k}": v for k, v in numbers(metrics).items()})
            elif record is not None:
                run.notes.append(f"{path.relative_to(run.path)} has no metrics")
            return


def _read_health(run: Run) -> None:
    """``health.json`` (written by the health monitor), its detectors reduced to the fields the page shows."""
    record = _read(run, run.path / HEALTH_NAME, read_json)
    if record is None:
        return
    detectors = record.get("detectors") if isinstance(record, dict) else None
    if not isinstance(detectors, list) or not all(isinstance(d, dict) for d in detectors):
        run.notes.append(f"{HEALTH_NAME} has no list of detectors")
        return
    step = lambda v: v if isinstance(v, int) and not isinstance(v, bool) else None  # noqa: E731
    run.health = {
        "healthy": record.get("healthy"),
        "detectors": [
            {
                "name": _one_line(d.get("name", "?"), 60),
                "fired": d.get("fired") is True,
                "first_step": step(d.get("first_step")),
                "last_step": step(d.get("last_step")),
                "message": _one_line(d.get("message", ""), 1000),
            }
            for d in detectors
        ],
    }


def health_summary(run: Run) -> str:
    """``ok``, the names of the detectors that fired, or ``n/a`` when the run has no readable health.json."""
    if run.health is None:
        return "n/a"
    fired = [str(d.get("name", "?")) for d in fired_detectors(run)]
    return ", ".join(fired) if fired else "ok"


def fired_detectors(run: Run) -> list[dict[str, Any]]:
    return [d for d in (run.health or {}).get("detectors", []) if d.get("fired")]


def numbers(record: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, float]:
    """The finite-or-not numeric entries of a JSON object (bools and lists left out)."""
    return {
        str(k): float(v)
        for k, v in record.items()
        if k not in skip and isinstance(v, int | float) and not isinstance(v, bool)
    }


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _one_line(text: Any, limit: int) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def read_runs(args: list[str]) -> list[Run]:
    """Every run named by ``args``, read; :class:`GenlabError` when there is none."""
    paths = find_runs(args)
    if not paths:
        raise GenlabError(
            f"no genlab runs under {' '.join(args)}: a run dir holds {', '.join(rundir.RUN_MARKERS)} "
            "(pass outputs/runs/<run> or outputs/multirun/<date>)"
        )
    return [read_run(path, label) for path, label in zip(paths, labels(paths), strict=True)]

"""The leaderboard: one row per run, the settings that differ between runs, the metric that ranks them.

The ranking metric is the runs' ``optimized_metric`` (what ``genlab train`` returns to a sweeper) unless the
command names one. Its direction comes from, in order: the command line, the Optuna sweeper's ``direction``,
the checkpoint callback's ``mode`` when it monitors the same metric, genlab's metric catalogue
(:func:`genlab.metrics.catalogue.direction`), and else ``min`` (said on the page). Rows without a value rank last, failed and partial runs included.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from genlab.metrics import catalogue
from genlab.report.runs import Run, config_value, finite, health_summary
from genlab.report.scalars import Curves
from genlab.utils.errors import GenlabError
from genlab.utils.progress import duration

MODES = ("min", "max")
STATUS_ORDER = {"finished": 0, "running": 1, "interrupted": 2, "diverged": 3, "failed": 4, "unknown": 5}
MISSING = "(default)"  # an override a run did not set: the config's default applies


@dataclass
class Ranking:
    metric: str | None
    mode: str = "min"
    source: str = ""  # where the direction came from, shown on the page


@dataclass
class Row:
    rank: int
    run: Run
    curves: Curves
    settings: dict[str, str]
    metric: float | None
    metrics: dict[str, float]
    latest: set[str] = field(default_factory=set)  # metric names read from the curves (no final value yet)
    color: str = "#888888"

    @property
    def status_text(self) -> str:
        return f"{self.run.status}: {self.run.error}" if self.run.error else self.run.status

    @property
    def notes(self) -> list[str]:
        notes = list(self.run.notes)
        if self.curves.note:
            notes.append(self.curves.note)
        if self.latest:
            notes.append("no final metrics yet: latest logged values")
        return notes


@dataclass
class Leaderboard:
    rows: list[Row]
    setting_keys: list[str]  # the overrides that differ between the runs
    metric_keys: list[str]  # every final metric, the ranking metric first
    ranking: Ranking
    has_health: bool

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """Header and rows as plain values (numbers stay numbers): the CSV's content."""
        header = ["rank", "run", *self.setting_keys, *self.metric_keys, "steps", "wall_time_s", "status"]
        header += ["error"] + (["health"] if self.has_health else []) + ["notes", "path"]
        body = []
        for row in self.rows:
            values = [row.rank, row.run.label, *(row.settings[k] for k in self.setting_keys)]
            values += [row.metrics.get(k) for k in self.metric_keys]
            values += [row.run.steps, row.run.wall_s, row.run.status, row.run.error or ""]
            values += [health_summary(row.run)] if self.has_health else []
            values += ["; ".join(row.notes), str(row.run.path)]
            body.append(values)
        return header, body

    @property
    def other_metrics(self) -> list[str]:
        return [k for k in self.metric_keys if k != self.ranking.metric]


def resolve_ranking(runs: list[Run], metric: str | None, mode: str | None) -> Ranking:
    if mode is not None and mode not in MODES:
        raise GenlabError(f"mode={mode} is not a direction; use mode=min or mode=max")
    if metric is None:
        named = Counter(m for r in runs if isinstance(m := r.config_value("optimized_metric"), str) and m)
        metric = named.most_common(1)[0][0] if named else None
    if metric is None:
        return Ranking(None)
    if mode is not None:
        return Ranking(metric, mode, "mode= on the command line")
    for run in runs:
        sweeper = config_value(run.hydra, "hydra.sweeper")
        direction = sweeper.get("direction") if isinstance(sweeper, dict) else None
        if direction in ("minimize", "maximize") and run.config_value("optimized_metric") == metric:
            return Ranking(metric, direction[:3], "the Optuna sweeper's direction")
    for run in runs:
        checkpoint = run.config_value("callbacks.model_checkpoint")
        if (
            isinstance(checkpoint, dict)
            and checkpoint.get("monitor") == metric
            and checkpoint.get("mode") in MODES
        ):
            return Ranking(metric, checkpoint["mode"], "callbacks.model_checkpoint.mode")
    known = catalogue.direction(metric)
    if known:
        return Ranking(metric, known, "genlab's metric catalogue")
    if "loss" in metric:
        return Ranking(metric, "min", "a loss: lower is better")
    return Ranking(metric, "min", "assumed: lower is better (pass mode=max if not)")


def differing_settings(runs: list[Run]) -> list[str]:
    """Override keys whose value is not the same in every run, in the order the runs list them."""
    keys: dict[str, None] = {}
    for run in runs:
        for key in run.settings:
            keys.setdefault(key, None)
    return [k for k in keys if len({run.settings.get(k, MISSING) for run in runs}) > 1]


def build(runs: list[Run], curves: list[Curves], ranking: Ranking) -> Leaderboard:
    setting_keys = differing_settings(runs)
    rows = []
    for run, run_curves in zip(runs, curves, strict=True):
        metrics = dict(run.metrics)
        latest = set()
        if not any(
            k for k in metrics if not k.startswith("eval/")
        ):  # no metrics.json (yet): last logged values
            for tag in run_curves.scalars:
                value = run_curves.last(tag)
                if value is not None:
                    metrics[tag] = value
                    latest.add(tag)
        if not run.steps_final:  # no metrics.json: the furthest of status.json and the curves
            run.steps = max((s for s in (run.steps, run_curves.max_step) if s is not None), default=None)
        settings = {k: run.settings.get(k, MISSING) for k in setting_keys}
        value = metrics.get(ranking.metric) if ranking.metric else None
        rows.append(Row(0, run, run_curves, settings, value, metrics, latest))
    rows.sort(key=lambda r: sort_key(r, ranking))
    for i, row in enumerate(rows, 1):
        row.rank = i
    return Leaderboard(
        rows,
        setting_keys,
        metric_columns(rows, ranking.metric),
        ranking,
        has_health=any(r.run.health is not None for r in rows),
    )


def sort_key(row: Row, ranking: Ranking) -> tuple:
    value = row.metric
    has_value = finite(value)
    signed = (-value if ranking.mode == "max" else value) if has_value else 0.0
    return (not has_value, signed, STATUS_ORDER.get(row.run.status, 9), row.run.label)


def metric_columns(rows: list[Row], first: str | None) -> list[str]:
    names = {k for row in rows for k in row.metrics}
    order = {"val": 0, "eval": 1, "train": 3}
    ordered = sorted(names - {first}, key=lambda k: (order.get(k.split("/")[0], 2), k))
    return ([first] if first else []) + ordered


# ---- text forms ---------------------------------------------------------------------------------
def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    return str(value)


def fmt_time(seconds: float | None) -> str:
    """A wall time in genlab's duration format; "" when not recorded."""
    return "" if seconds is None else duration(seconds)


def to_csv(board: Leaderboard) -> str:
    header, body = board.table()
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for values in body:
        writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in values])
    return buf.getvalue()


def summary_columns(board: Leaderboard) -> list[tuple[str, Any]]:
    """(column, getter) of the short leaderboard: the terminal's and the markdown's."""
    cols: list[tuple[str, Any]] = [("#", lambda r: r.rank), ("run", lambda r: r.run.label)]
    cols += [(k, lambda r, k=k: r.settings[k]) for k in board.setting_keys]
    metric = board.ranking.metric
    if metric:
        arrow = "↑" if board.ranking.mode == "max" else "↓"
        cols.append(
            (
                f"{metric} {arrow}",
                lambda r: fmt(r.metric) + ("*" if metric in r.latest and r.metric is not None else ""),
            )
        )
    cols += [("steps", lambda r: fmt(r.run.steps)), ("wall", lambda r: fmt_time(r.run.wall_s))]
    cols.append(("status", lambda r: r.status_text))
    if board.has_health:
        cols.append(("health", lambda r: health_summary(r.run)))
    cols.append(("notes", lambda r: "; ".join(r.notes)))
    return cols


def to_text(board: Leaderboard, width: int = 60) -> str:
    """The leaderboard as aligned columns for the terminal (long cells cut at ``width``)."""
    cols = summary_columns(board)
    cells = [[_cut(str(get(row)), width) for _, get in cols] for row in board.rows]
    header = [name for name, _ in cols]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip() for cell in cells]
    return "\n".join(lines)


def to_markdown(board: Leaderboard) -> str:
    cols = summary_columns(board)
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(esc(name) for name, _ in cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(esc(get(row)) for _, get in cols) + " |" for row in board.rows]
    return "\n".join(lines)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"

"""The report's files: the HTML page (jinja2 template ``templates/report.html.j2``), the CSV and the markdown.

``genlab report`` overwrites only these files of its own: :func:`written_by_report` recognizes each by how it
begins (the page's generator tag, the markdown's title, the CSV's header).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from genlab.report import leaderboard as lb
from genlab.report.runs import fired_detectors, health_summary
from genlab.report.samples import Images
from genlab.report.sweeps import SweepSection
from genlab.utils.rundir import read_bytes

TEMPLATES = Path(__file__).resolve().parent / "templates"
# what each file the report writes holds in its first bytes (the page's <title> is what pages had before the tag)
OWN_MARKS = {
    "html": ('<meta name="generator" content="genlab report">', "<title>genlab report</title>"),
    "markdown": ("# genlab report\n",),
    "csv": ("rank,run,",),
}
HEAD_BYTES = 4096


@dataclass
class Page:
    board: lb.Leaderboard
    inputs: list[str]
    curves: list[tuple[str, str]]
    samples: list[tuple[lb.Row, Images]]
    sweeps: list[SweepSection]


def render_html(page: Page) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    counts = Counter(row.run.status for row in page.board.rows)
    return env.get_template("report.html.j2").render(
        title="genlab report",
        generated=datetime.now().astimezone().isoformat(timespec="seconds"),
        inputs=page.inputs,
        runs_count=len(page.board.rows),
        counts=sorted(counts.items(), key=lambda kv: lb.STATUS_ORDER.get(kv[0], 9)),
        ranking=page.board.ranking,
        board=page.board,
        curves=page.curves,
        samples=page.samples,
        sweeps=page.sweeps,
        any_latest=any(row.latest for row in page.board.rows),
        default_marker=lb.MISSING,
        fmt=lb.fmt,
        fmt_time=lb.fmt_time,
        fired_detectors=fired_detectors,
        health_summary=health_summary,
    )


def render_markdown(page: Page) -> str:
    board = page.board
    lines = ["# genlab report", ""]
    lines.append(f"{len(board.rows)} runs from {', '.join(f'`{p}`' for p in page.inputs)}.")
    if board.ranking.metric:
        better = "higher" if board.ranking.mode == "max" else "lower"
        lines.append(f"Ranked by `{board.ranking.metric}` ({better} is better; {board.ranking.source}).")
    else:
        lines.append("No ranking metric (the runs record no optimized_metric; pass metric=<key>).")
    lines += ["", "## Leaderboard", "", lb.to_markdown(board), ""]
    if any(row.latest for row in board.rows):
        lines += ["\\* latest logged value: the run has no final metrics.json (yet).", ""]
    lines += ["All final metrics per run: `leaderboard.csv`.", ""]
    problems = [row for row in board.rows if row.run.error or row.notes]
    if problems:
        lines += ["## Problems", ""]
        for row in problems:
            text = "; ".join([*([row.run.error] if row.run.error else []), *row.notes])
            lines.append(f"- #{row.rank} `{row.run.label}` ({row.run.status}): {text}")
        lines.append("")
    lines += ["## Commands", ""]
    for row in board.rows:
        lines += [f"- #{row.rank} `{row.run.label}`: `{row.run.rerun_command()}`"]
    return "\n".join(lines) + "\n"


def written_by_report(path: Path, kind: str) -> bool:
    """Whether ``path`` may be overwritten as the report's ``kind`` file: it does not exist, or it is a regular
    file (not a link) that genlab report wrote."""
    try:
        head = read_bytes(path, HEAD_BYTES, head=True).decode(errors="replace")
    except FileNotFoundError:
        return not os.path.lexists(path)  # a dangling link is not the report's
    except (OSError, ValueError):  # a link, a folder, a FIFO: not the report's file
        return False
    marks = OWN_MARKS[kind]
    return any(mark in head for mark in marks) if kind == "html" else head.startswith(marks)

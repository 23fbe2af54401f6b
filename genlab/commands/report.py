"""``genlab report <path> [<path> ...] [out=<file>] [metric=<key>] [mode=min|max] [jobs=<n>]``.

A path is a run dir, a sweep dir (``outputs/multirun/<date>``), any folder above them, or a glob. Writes the
page (``out``, default ``<the one dir given>/report.html`` or ``./report.html``) and, beside it,
``leaderboard.csv`` and ``report.md``; prints the leaderboard. Only files genlab report wrote are overwritten. Problems with the command end in a
:class:`~genlab.utils.errors.GenlabError` (one line, exit 2); problems with one run mark its row.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from genlab.report import leaderboard as lb
from genlab.report.page import Page, render_html, render_markdown, written_by_report
from genlab.report.plots import colors, curve_plots
from genlab.report.runs import read_runs
from genlab.report.samples import run_images
from genlab.report.scalars import read_all
from genlab.report.sweeps import analyse
from genlab.utils.atomic import check_writable, write_text_atomic
from genlab.utils.errors import GenlabError

USAGE = (
    "usage: genlab report <run dir | sweep dir | glob> [...] [out=<page.html>] [metric=<key>] "
    "[mode=min|max] [jobs=<n>]"
)
HELP = f"""{USAGE}

Compare runs in one self-contained HTML page (leaderboard, curves, samples, sweep analysis, configs),
plus leaderboard.csv and report.md beside it; the leaderboard is also printed here.
  out=<file>     the page (default: <dir>/report.html for one dir given, else ./report.html)
  metric=<key>   rank by this final metric (default: the runs' optimized_metric)
  mode=min|max   its direction (default: the sweeper's / checkpoint callback's / genlab's known metrics)
  jobs=<n>       processes reading event files (default 1; more pays off for long runs on many cores)
Examples: genlab report outputs/multirun/2024-05-01_10-00-00
          genlab report 'outputs/runs/*' out=outputs/compare.html metric=val/fid"""
OPTIONS = ("out", "metric", "mode", "jobs")


@dataclass
class Request:
    paths: list[str] = field(default_factory=list)
    out: Path | None = None
    metric: str | None = None
    mode: str | None = None
    jobs: int = 1


@dataclass
class Written:
    page: Page
    html: Path
    csv: Path
    markdown: Path


def parse(args: list[str]) -> Request:
    request = Request()
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key in OPTIONS:
            if not value.strip():
                raise GenlabError(f"{key}= is empty; {USAGE}")
            if key == "jobs":
                if not value.isdigit() or int(value) < 1:
                    raise GenlabError(f"jobs={value} must be a whole number >= 1")
                request.jobs = int(value)
            else:
                setattr(request, key, Path(value) if key == "out" else value)
        elif sep and "/" not in key and not Path(arg).exists():
            raise GenlabError(f"{key}= is not an option of genlab report; options: {', '.join(OPTIONS)}")
        elif arg.startswith("-"):
            raise GenlabError(f"unknown flag {arg}; {USAGE}")
        else:
            request.paths.append(arg)
    if not request.paths:
        raise GenlabError(f"no run or sweep dir given; {USAGE}")
    return request


def default_out(paths: list[str]) -> Path:
    if len(paths) == 1 and Path(paths[0]).is_dir():
        return Path(paths[0]) / "report.html"
    return Path("report.html")


def make_report(request: Request) -> Written:
    """Read the runs, build every section, write the three files; return what was written."""
    html = request.out or default_out(request.paths)
    targets = {html: "html", html.parent / "leaderboard.csv": "csv", html.parent / "report.md": "markdown"}
    runs = read_runs(request.paths)
    check_writable(html, "out")
    for path, kind in targets.items():
        if not written_by_report(path, kind):
            raise GenlabError(
                f"{path} exists and was not written by genlab report; move it away or choose another "
                "out=<dir>/report.html (the page, leaderboard.csv and report.md go there)"
            )
    ranking = lb.resolve_ranking(runs, request.metric, request.mode)
    curves = read_all([run.path for run in runs], request.jobs)
    board = lb.build(runs, curves, ranking)
    for row, color in zip(board.rows, colors(len(board.rows)), strict=True):
        row.color = color
    page = Page(
        board=board,
        inputs=request.paths,
        curves=curve_plots(board),
        samples=[(row, run_images(row)) for row in board.rows],
        sweeps=analyse(board),
    )
    html_path, csv_path, md_path = targets
    files = {html_path: render_html(page), csv_path: lb.to_csv(board), md_path: render_markdown(page)}
    for path, text in files.items():
        try:
            write_text_atomic(path, text)
        except OSError as e:
            raise GenlabError(
                f"cannot write {path}: {e.strerror or e}; choose a writable place with out=<dir>/report.html"
            ) from e
    return Written(page, html, csv_path, md_path)


def main(args: list[str]) -> int:
    if any(a in ("-h", "--help") for a in args):
        print(HELP)
        return 0
    written = make_report(parse(args))
    print(lb.to_text(written.page.board))
    print(f"wrote {written.html}, {written.csv.name} and {written.markdown.name} beside it", file=sys.stdout)
    return 0

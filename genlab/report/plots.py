"""Figures as embedded PNGs: the curves overlaid across runs, and a metric against each swept setting.

Figures are made with matplotlib's object API (``Figure`` + Agg), no pyplot state, and returned as
``data:image/png;base64,...`` URIs so the page needs no other file.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np
from matplotlib.figure import Figure

from genlab.report.leaderboard import Leaderboard, Row

MAX_POINTS = 2000  # per line: a long run is drawn from every k-th point
TAG_ORDER = ("val/", "eval/", "train/")


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure_uri(fig, tight: bool = False) -> str:
    """The figure as a PNG URI; ``tight`` crops to what was drawn (for figures not laid out with tight_layout)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight" if tight else None)
    return data_uri(buf.getvalue())


def colors(n: int) -> list[str]:
    """One colour per leaderboard row: categorical for few runs, a sequence by rank for many."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    if n <= 10:
        return [to_hex(colormaps["tab10"](i)) for i in range(n)]
    if n <= 20:
        return [to_hex(colormaps["tab20"](i)) for i in range(n)]
    return [to_hex(colormaps["viridis"](0.9 * i / (n - 1))) for i in range(n)]


def tag_key(tag: str) -> tuple:
    for i, prefix in enumerate(TAG_ORDER):
        if tag.startswith(prefix):
            return (i, tag)
    return (len(TAG_ORDER), tag)


def curve_plots(board: Leaderboard) -> list[tuple[str, str]]:
    """(tag, PNG URI) for every scalar tag any run logged, each run's curve in its row's colour (the page
    shows one legend for all of them: the leaderboard's swatches)."""
    tags = sorted({tag for row in board.rows for tag in row.curves.scalars}, key=tag_key)
    return [(tag, figure_uri(_curve_figure(tag, board.rows))) for tag in tags]


def _curve_figure(tag: str, rows: list[Row]) -> Figure:
    from matplotlib.collections import LineCollection

    fig = Figure(figsize=(3.6, 2.4), dpi=96)
    ax = fig.subplots()
    lines, line_colors, points, point_colors = [], [], [], []
    for row in reversed(rows):  # the best run is drawn last, on top
        series = row.curves.scalars.get(tag)
        if not series or not series[0]:
            continue
        steps, values = np.asarray(series[0], dtype=float), np.asarray(series[1], dtype=float)
        values[~np.isfinite(values)] = np.nan  # a diverged run's inf would flatten every other curve
        if len(steps) > MAX_POINTS:
            every = math.ceil(len(steps) / MAX_POINTS)
            steps, values = steps[::every], values[::every]
        lines.append(np.column_stack([steps, values]))
        line_colors.append(row.color)
        if len(steps) < 3:  # too short to see as a line
            points += lines[-1].tolist()
            point_colors += [row.color] * len(steps)
    # one collection for all runs: drawing 50 runs as 50 Line2D objects costs several times more
    ax.add_collection(LineCollection(lines, colors=line_colors, linewidths=1.2))
    if points:
        ax.scatter(*zip(*points, strict=True), c=point_colors, s=9, zorder=3)
    ax.autoscale()
    ax.set_title(tag, fontsize=9)
    ax.set_xlabel("step", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def sort_values(values: list[str]) -> list[str]:
    """Setting values in numeric order when they are all numbers, else as text."""

    def number(v: str) -> float | None:
        try:
            return float(v)
        except ValueError:
            return None

    if all(number(v) is not None for v in values):
        return sorted(values, key=lambda v: number(v))
    return sorted(values)


def setting_plots(rows: list[Row], keys: list[str], metric: str, mode: str) -> list[tuple[str, str]]:
    """(setting, PNG URI): the ranking metric of each run against each swept setting (grid sweeps)."""
    scored = [r for r in rows if r.metric is not None and math.isfinite(r.metric)]
    out = []
    for key in keys:
        values = sort_values(sorted({r.settings[key] for r in rows}))
        fig = Figure(figsize=(3.6, 2.6), dpi=96)
        ax = fig.subplots()
        position = {v: i for i, v in enumerate(values)}
        for row in scored:
            ax.scatter(position[row.settings[key]], row.metric, color=row.color, s=28, zorder=3)
        means = [
            (position[v], float(np.mean([r.metric for r in scored if r.settings[key] == v])))
            for v in values
            if any(r.settings[key] == v for r in scored)
        ]
        if means:
            ax.plot(*zip(*means, strict=True), color="black", linewidth=1, alpha=0.6, label="mean", zorder=2)
            ax.legend(fontsize=6, frameon=False)
        ax.set_xticks(
            range(len(values)), [_short(v) for v in values], fontsize=7, rotation=30 if len(values) > 4 else 0
        )
        ax.set_xlabel(key, fontsize=8)
        ax.set_ylabel(f"{metric} ({'higher' if mode == 'max' else 'lower'} is better)", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        out.append((key, figure_uri(fig)))
    return out


def _short(text: str, width: int = 14) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"

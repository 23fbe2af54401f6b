"""Sweep analysis: Optuna's optimization history and parameter importances, or the metric against each
swept setting of a grid sweep.

An Optuna sweep (hydra-optuna-sweeper) keeps its study in memory, so the study is rebuilt here from its job
directories: each job's overrides are its trial's parameters, its final ``optimized_metric`` the trial's value
(failed jobs are failed trials). The search space comes from the sweeper's ``params`` recorded in each job's
``.hydra/hydra.yaml``, parsed by Hydra's own override parser; values outside it fall back to the observed range.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genlab.report.leaderboard import Leaderboard, Row
from genlab.report.plots import figure_uri, setting_plots
from genlab.report.runs import config_value
from genlab.utils.rundir import read_text

OPTUNA_SWEEPER = "OptunaSweeper"


@dataclass
class SweepSection:
    title: str
    kind: str  # "optuna" | "grid"
    figures: list[tuple[str, str]] = field(default_factory=list)  # (caption, PNG URI)
    notes: list[str] = field(default_factory=list)
    best: str | None = None  # optimization_results.yaml as text


def groups(board: Leaderboard) -> list[tuple[Path | None, list[Row]]]:
    """Rows by sweep directory (leaderboard order kept); runs outside any sweep form one group."""
    by_dir: dict[Path | None, list[Row]] = {}
    for row in board.rows:
        by_dir.setdefault(row.run.sweep_dir, []).append(row)
    return [(d, rows) for d, rows in by_dir.items() if len(rows) > 1]


def analyse(board: Leaderboard) -> list[SweepSection]:
    metric = board.ranking.metric
    sections = []
    for sweep_dir, rows in groups(board):
        scored = [r for r in rows if r.metric is not None and math.isfinite(r.metric)]
        if sweep_dir is None and len(scored) < 2:
            continue  # separate runs with nothing to compare: the leaderboard says it all
        title = str(sweep_dir) if sweep_dir else "runs outside a sweep"
        keys = [k for k in board.setting_keys if len({r.settings[k] for r in rows}) > 1]
        if sweep_dir is not None and is_optuna(rows):
            sections.append(optuna_section(title, sweep_dir, rows, keys, metric, board.ranking.mode))
            continue
        section = SweepSection(title, "grid")
        if not metric:
            section.notes.append("no ranking metric: train with optimized_metric=<key> or pass metric=<key>")
        elif not keys:
            section.notes.append("the runs share every setting")
        else:
            unscored = [f"#{r.rank}" for r in rows if r.metric is None or not math.isfinite(r.metric)]
            if len(rows) - len(unscored) < 2:
                section.notes.append(f"fewer than two runs have a value of {metric}: nothing to compare")
            else:
                section.figures = setting_plots(rows, keys, metric, board.ranking.mode)
                if unscored:
                    section.notes.append(f"without a value of {metric} (not plotted): {', '.join(unscored)}")
        sections.append(section)
    return sections


def is_optuna(rows: list[Row]) -> bool:
    return any(
        str(config_value(r.run.hydra, "hydra.sweeper._target_") or "").endswith(OPTUNA_SWEEPER) for r in rows
    )


def optuna_section(
    title: str, sweep_dir: Path, rows: list[Row], keys: list[str], metric: str | None, mode: str
) -> SweepSection:
    section = SweepSection(title, "optuna")
    results = sweep_dir / "optimization_results.yaml"
    if os.path.lexists(results):
        try:
            section.best = read_text(results)
        except (OSError, ValueError) as e:  # RunFileError: a link, a FIFO, too large
            section.notes.append(
                f"optimization_results.yaml unreadable ({getattr(e, 'strerror', None) or e})"
            )
    else:
        section.notes.append("no optimization_results.yaml yet (the sweep is running or was stopped)")
    if not metric:
        section.notes.append("no optimized_metric recorded: nothing to plot")
        return section
    import matplotlib

    matplotlib.use("Agg")  # optuna's matplotlib plots go through pyplot
    import matplotlib.pyplot as plt
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    vis = optuna.visualization.matplotlib
    # optuna switches pyplot to its own style: rc_context restores it for the other figures
    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("ignore")  # optuna 2.x marks add_trial and its matplotlib plots experimental
        study, skipped = rebuild_study(rows, keys, metric, mode)
        section.notes += skipped
        n_params = len({name for trial in study.trials for name in trial.params})
        plots = {
            "optimization history": (vis.plot_optimization_history, (5.2, 3.2)),
            "parameter importances": (plot_importances, (5.2, 3.2)),
            "metric against each parameter": (vis.plot_slice, (2.4 * max(1, n_params) + 1.2, 3.2)),
        }
        for caption, (plot, size) in plots.items():
            try:
                result = plot(study)
            except (
                ImportError,
                ValueError,
                RuntimeError,
                ZeroDivisionError,
            ) as e:  # e.g. < 2 finished trials
                section.notes.append(f"{caption}: {' '.join(str(e).split())[:160]}")
                continue
            fig = first_axes(result).figure
            fig.set_size_inches(*size)
            fig.set_dpi(96)
            section.figures.append((caption, figure_uri(fig, tight=True)))
            plt.close(fig)
    return section


def plot_importances(study: Any) -> Any:
    """Optuna's parameter importances as a bar chart.

    optuna 2.x (what hydra-optuna-sweeper installs) cannot draw them with current numpy and matplotlib: its
    fANOVA fails on numpy 2 and its plot calls the removed ``matplotlib.cm.get_cmap``. The importances are
    still optuna's (mean decrease in impurity, scikit-learn's random forest); only the bars are drawn here.
    """
    import matplotlib.pyplot as plt
    import optuna

    evaluator = optuna.importance.MeanDecreaseImpurityImportanceEvaluator(seed=0)
    importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
    if not any(v > 0 for v in importances.values()):  # also NaN: a constant metric explains nothing
        raise ValueError("the metric or the parameters do not vary across the finished trials")
    names = list(importances)[::-1]
    fig, ax = plt.subplots()
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    ax.set_xlabel("importance (mean decrease in impurity)")
    ax.set_title("Parameter importances")
    fig.tight_layout()
    return ax


def first_axes(result: Any) -> Any:
    """optuna returns one Axes, or an array of them (plot_slice with several parameters)."""
    import numpy as np

    return np.asarray(result, dtype=object).flat[0] if not hasattr(result, "figure") else result


def rebuild_study(rows: list[Row], keys: list[str], metric: str, mode: str):
    """An in-memory study with one trial per job, in job order; (study, notes on jobs left out)."""
    import optuna
    from optuna.trial import TrialState, create_trial

    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    spec = sweeper_params(rows)
    names = list(dict.fromkeys([*spec, *keys]))
    values = {
        name: [parse_value(name, r.run.settings[name]) for r in rows if name in r.run.settings]
        for name in names
    }
    space = {name: declared_or_observed(spec.get(name), values[name]) for name in names if values[name]}
    notes = []
    for row in sorted(rows, key=lambda r: (r.run.job_num is None, r.run.job_num or 0, r.run.label)):
        if row.run.status == "running":
            notes.append(f"#{row.rank} is still running: not a trial yet")
            continue
        params = {n: parse_value(n, row.run.settings[n]) for n in space if n in row.run.settings}
        dists = {n: space[n] for n in params}
        done = row.run.status == "finished" and row.metric is not None and math.isfinite(row.metric)
        try:
            trial = create_trial(
                state=TrialState.COMPLETE if done else TrialState.FAIL,
                value=row.metric if done else None,
                params=params,
                distributions=dists,
                user_attrs={"run": row.run.label},
            )
        except ValueError as e:
            notes.append(f"#{row.rank} left out: {' '.join(str(e).split())[:120]}")
            continue
        study.add_trial(trial)
    return study, notes


def sweeper_params(rows: list[Row]) -> dict[str, Any]:
    """``hydra.sweeper.params`` (name -> Optuna distribution) as the jobs recorded it; {} if unreadable."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    for row in rows:
        params = config_value(row.run.hydra, "hydra.sweeper.params")
        if not isinstance(params, dict):
            continue
        parser, out = OverridesParser.create(), {}
        for name, text in params.items():
            try:
                out[name] = distribution(parser.parse_override(f"{name}={text}"))
            except (HydraException, ValueError, TypeError):
                continue
        return {k: v for k, v in out.items() if v is not None}
    return {}


def distribution(override) -> Any:
    """The Optuna distribution of one sweep override, as hydra-optuna-sweeper maps them."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
    from optuna.distributions import CategoricalDistribution

    value = override.value()
    if isinstance(value, ChoiceSweep):
        return CategoricalDistribution(list(value.list))
    if isinstance(value, RangeSweep):
        return CategoricalDistribution(list(override.sweep_iterator()))
    if isinstance(value, IntervalSweep):
        log = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return int_distribution(value.start, value.end, log)
        return float_distribution(float(value.start), float(value.end), log)
    return None


# hydra-optuna-sweeper pins optuna 2.x (Uniform/LogUniform/IntUniform); optuna 3 renamed them
def float_distribution(low: float, high: float, log: bool = False) -> Any:
    from optuna import distributions as d

    if hasattr(d, "FloatDistribution"):
        return d.FloatDistribution(low, high, log=log)
    return d.LogUniformDistribution(low, high) if log else d.UniformDistribution(low, high)


def int_distribution(low: int, high: int, log: bool = False) -> Any:
    from optuna import distributions as d

    if hasattr(d, "IntDistribution"):
        return d.IntDistribution(low, high, log=log)
    return d.IntLogUniformDistribution(low, high) if log else d.IntUniformDistribution(low, high)


def parse_value(name: str, text: str) -> Any:
    """An override's value as the sweeper saw it (``4`` -> 4, ``0.1`` -> 0.1, ``ns`` -> 'ns')."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, str | int | float | bool) or value is None else text


def declared_or_observed(declared: Any, values: list[Any]) -> Any:
    from optuna.distributions import CategoricalDistribution

    if declared is not None and all(_contains(declared, v) for v in values):
        return declared
    numeric = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numeric) == len(values) and len(set(numeric)) > 1:
        if all(isinstance(v, int) for v in numeric):
            return int_distribution(min(numeric), max(numeric))
        return float_distribution(float(min(numeric)), float(max(numeric)))
    return CategoricalDistribution(sorted(set(values), key=str))


def _contains(dist: Any, value: Any) -> bool:
    from optuna.distributions import CategoricalDistribution

    if isinstance(dist, CategoricalDistribution):
        return value in dist.choices
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    return dist.low <= value <= dist.high

"""What genlab asks of Hydra's runtime (public ``HydraConfig`` API only)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml


def in_sweep() -> bool:
    """Whether this job runs inside ``-m`` (a sweeper decides what a failed job means)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def task_overrides() -> list[str]:
    """The command-line overrides of this job (what ``.hydra/overrides.yaml`` records), or [] outside Hydra."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def hydra_config_yaml() -> str | None:
    """Hydra's own config of this job as YAML (for ``.hydra/hydra.yaml``), or None outside Hydra."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    if not HydraConfig.initialized():
        return None
    return OmegaConf.to_yaml({"hydra": HydraConfig.get()})


def job_tag() -> str:
    """``"[job 3] "`` inside a sweep (parallel jobs' lines interleave), else ``""``."""
    from hydra.core.hydra_config import HydraConfig

    if not in_sweep():
        return ""
    return f"[job {HydraConfig.get().job.num}] "


def swept_keys() -> list[str]:
    """The keys this sweep varies, [] outside a sweep: the sweep overrides of the command line
    (``optimizer.lr=1e-4,2e-4``, as Hydra's basic sweeper recorded them in ``<sweep dir>/multirun.yaml``, or
    from ``sys.argv`` where that file is missing) and the sweeper's own search space (Optuna's
    ``hydra.sweeper.params``)."""
    from hydra.core.hydra_config import HydraConfig

    if not in_sweep():
        return []
    hydra = HydraConfig.get()
    command_line = recorded_sweep_overrides(Path(hydra.sweep.dir) / "multirun.yaml")
    if command_line is None:
        command_line = [a for a in sys.argv[1:] if not a.startswith("-")]
    keys = [o.key_or_group for o in parse_overrides(command_line) if o.is_sweep_override()]
    keys += [str(k) for k in (getattr(hydra.sweeper, "params", None) or {})]
    return list(dict.fromkeys(keys))


def recorded_sweep_overrides(path: Path) -> list[str] | None:
    try:
        recorded = yaml.safe_load(path.read_text())
        task = recorded["hydra"]["overrides"]["task"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None
    return [str(o) for o in task] if isinstance(task, list) else None


def parse_overrides(args: list[str]) -> list:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    parsed = []
    for arg in args:  # one by one: an argument Hydra cannot parse costs only itself
        try:
            parsed += parser.parse_overrides([arg])
        except HydraException:
            continue
    return parsed


def job_label() -> str:
    """A sweep job's directory name: its number and the values of the swept keys, e.g.
    ``3_model:vae+optimizer.lr:0.0002``. Only characters that need no quoting in a Hydra override or a shell,
    so ``genlab train resume=<job dir>`` and ``genlab sample ckpt=<job dir>/...`` work as typed."""
    from hydra.core.hydra_config import HydraConfig

    job = HydraConfig.get().job
    swept = swept_keys()
    values = {o.key_or_group: o.value() for o in parse_overrides(task_overrides()) if o.key_or_group in swept}
    parts = [f"{key}:{short_value(values[key])}" for key in swept if key in values]
    label = _UNSAFE.sub("-", "+".join(parts)).strip("-")[:MAX_LABEL]
    return f"{job.num}_{label}" if label else str(job.num)


MAX_LABEL = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._:+-]+")


def short_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "-".join(short_value(v) for v in value)
    return str(value)


def sweep_and_job() -> tuple[str | None, str | None]:
    """(the sweep directory's name, this job's directory name) inside ``-m``; (None, None) otherwise."""
    from hydra.core.hydra_config import HydraConfig

    if not in_sweep():
        return None, None
    hydra = HydraConfig.get()
    return Path(hydra.sweep.dir).name, Path(hydra.runtime.output_dir).name

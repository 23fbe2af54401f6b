"""Continuing a run from a checkpoint: what the checkpoint allows to change, and the rewind of its directory.

The checkpoint's model part (:class:`~genlab.checkpoint.ModelRecord`) must match the new run's where it defines
the trained networks and data; its stored run settings (trainer, callbacks, loggers) must still validate, since
a resume restores their state. A checkpoint that fails only the latter still samples and evaluates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlab.checkpoint import RECORD_KEY, STATE_DIGEST, read_checkpoint, stored_record
from genlab.run.config import RunConfig
from genlab.utils.atomic import copy_atomic
from genlab.utils.errors import CheckpointError, ConfigError
from genlab.utils.rundir import move_abandoned

log = logging.getLogger("genlab")
KEY = "ckpt_path"


@dataclass
class ResumePlan:
    """What continuing from ``ckpt_path`` means for this run."""

    path: Path
    step: int
    changes: list[str] = field(default_factory=list)  # "key: old -> new" of the settings applied anew
    optimizer_settings: list[dict[str, Any]] = field(default_factory=list)  # per optimizer, what changed


def plan_resume(run: RunConfig) -> ResumePlan | None:
    """Check that ``run`` may continue the checkpoint's run; list the settings that change."""
    path = run.settings.ckpt_path
    if not path:
        return None
    ckpt = read_checkpoint(path, key=KEY, resume=True)
    if STATE_DIGEST not in ckpt[RECORD_KEY]:
        log.warning(
            "%s=%s was written by a genlab that did not checksum the training state: its optimizer, scheduler "
            "and loop state are restored unverified",
            KEY,
            path,
        )
    old = stored_run(ckpt, path, run.model_family)
    fixed, changed = compare_runs(old, run)
    if fixed:
        raise ConfigError(
            f"cannot resume {path} with a different {', '.join(fixed)}: these define the trained networks and "
            "data; keep them as they were, or start a new run"
        )
    old_settings = old.model_class.optimizer_settings(old.model, old.optimizer)
    new_settings = run.model_class.optimizer_settings(run.model, run.optimizer)
    optimizer_settings = [
        {k: v for k, v in new.items() if before.get(k) != v}
        for before, new in zip(old_settings, new_settings, strict=True)
    ]
    return ResumePlan(Path(path), int(ckpt.get("global_step", 0)), changed, optimizer_settings)


def stored_run(ckpt: dict[str, Any], path: str | Path, family: str) -> RunConfig:
    """The run a checkpoint continues: its model part first (a run of another family is refused as such),
    then its stored run settings, which this genlab must still be able to restore."""
    record = stored_record(ckpt, path, key=KEY)
    if record.model_family != family:
        raise ConfigError(
            f"{KEY}={path} is a {record.model_family} run and a run cannot change its model family "
            f"(model={family} asked); resume with model={record.model_family}, or start a new run"
        )
    try:
        return RunConfig.from_plain(ckpt[RECORD_KEY]["config"], record)
    except ConfigError as e:
        reason = " ".join(str(e).split()).replace("is not a known key", "is no longer a genlab key")
        raise CheckpointError(
            f"{KEY}={path} cannot be resumed by this genlab: its stored run settings do not validate ({reason}); "
            f"the checkpoint still samples and evaluates (genlab sample|eval ckpt={path}); to train on, start "
            "a new run"
        ) from e


def compare_runs(old: RunConfig, new: RunConfig) -> tuple[list[str], list[str]]:
    """(keys that may not change but did, "key: old -> new" of the keys that may change and did)."""
    fixed, changed = [], []
    before, after = flatten(old.to_plain()), flatten(new.to_plain())
    frozen = {f"model.{k}" for k in new.model.resume_fixed} | {
        f"dataset.{k}" for k in new.dataset.resume_fixed
    }
    frozen |= {"seed", "optimizer.name", "optimizer.scheduler"}
    for key in sorted(set(before) | set(after)):
        if key in ("resume", "ckpt_path") or key.startswith("paths.") or before.get(key) == after.get(key):
            continue
        if key in frozen:
            fixed.append(f"{key} ({before.get(key)!r} -> {after.get(key)!r})")
        else:
            changed.append(f"{key}: {before.get(key)!r} -> {after.get(key)!r}")
    if old.data != new.data and not fixed:
        fixed.append("data spec (image size, channels or value range)")
    return fixed, changed


def flatten(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def rewind(run_dir: Path, plan: ResumePlan) -> None:
    """Set aside the checkpoints of the branch a resume abandons (any written after the resume point), and
    make ``last.ckpt`` the resume point so the directory is consistent even before the next save."""
    ckpt_dir = run_dir / "checkpoints"
    if not ckpt_dir.is_dir() or plan.path.resolve().parent != ckpt_dir.resolve():
        return
    moved = move_abandoned(ckpt_dir, plan.step, keep=plan.path)
    if moved is None:
        return
    log.info("rewind to step %d: later checkpoints moved to %s", plan.step, moved)
    last = ckpt_dir / "last.ckpt"
    if plan.path.resolve() != last.resolve():
        copy_atomic(plan.path, last)

"""``resume=<run dir>``: the run's recorded overrides replayed on the command line, as untrusted input.

A run directory may come from anyone (a colleague's ``outputs/``, a downloaded result), so what it asks to
replay is held to genlab's own configs: config-group overrides must name an option that exists in genlab's
config groups (no ``/``, no ``..``, no absolute path), no ``hydra`` keys, no ``_target_``, no package
overrides, no sweeps, no network file. Once the replayed lines are accepted, the composed config must carry the
same Hydra callbacks and logging setup as the user's own command line alone would: a run directory never adds
code that Hydra instantiates. The user's own command-line overrides stay the user's choice.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from genlab.utils.errors import UserError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
DROPPED = ("resume=", "ckpt_path=", "hydra.run.dir=")
OPTION_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
# the parts of Hydra's own config that it instantiates or configures before genlab runs
HYDRA_CODE_KEYS = ("callbacks", "job_logging", "hydra_logging")


def expand_resume(args: list[str]) -> list[str]:
    """``resume=<run dir>`` (or ``ckpt_path=<run dir>/checkpoints/x.ckpt``) -> the run's own overrides plus
    ``hydra.run.dir=<run dir>`` and ``ckpt_path=<checkpoint>``, so the same run continues in place."""
    opts = dict(a.split("=", 1) for a in args if "=" in a and not a.startswith(("-", "+", "~")))
    run_dir, ckpt = opts.get("resume"), opts.get("ckpt_path")
    if run_dir in (None, "null") and ckpt not in (None, "null"):
        ckpt_file = Path(ckpt)
        if not ckpt_file.is_file():
            raise UserError(f"ckpt_path={ckpt} does not exist; pass an existing checkpoint file")
        if (
            ckpt_file.parent.name == "checkpoints"
            and (ckpt_file.parent.parent / ".hydra" / "overrides.yaml").is_file()
        ):
            run_dir = str(ckpt_file.parent.parent)
    if run_dir in (None, "null"):
        return args
    run = Path(run_dir)
    if not run_dir.strip().strip("'\"").strip():
        raise UserError("resume= is empty; pass a run directory, e.g. resume=outputs/runs/<run>")
    stored = run / ".hydra" / "overrides.yaml"
    if not stored.is_file():
        raise UserError(
            f"resume={run_dir} is not a genlab run directory (no .hydra/overrides.yaml); pass a dir under outputs/runs/"
        )
    if ckpt in (None, "null"):
        ckpt = str(run / "checkpoints" / "last.ckpt")
        if not Path(ckpt).is_file():
            raise UserError(f"resume={run_dir} has no checkpoints/last.ckpt yet; start the run again instead")
    previous = [o for o in stored_overrides(stored) if not o.startswith(DROPPED)]
    new = [a for a in args if not a.startswith(DROPPED)]
    check_replayed_code(previous, [o for o in new if not o.startswith("-")], stored)
    quoted = lambda p: "'" + str(Path(p).resolve()).replace("\\", "\\\\").replace("'", "\\'") + "'"  # noqa: E731
    return [
        *previous,
        *new,
        f"resume={quoted(run)}",
        f"ckpt_path={quoted(ckpt)}",
        f"hydra.run.dir={quoted(run)}",
    ]


def stored_overrides(path: Path) -> list[str]:
    """The overrides a run directory recorded, validated before they are replayed: only plain
    ``group=option`` / ``key=value`` lines of genlab's own config are taken."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from genlab.utils.rundir import read_yaml

    try:
        lines = read_yaml(path, within=path.parent.parent)
    except (OSError, ValueError) as e:  # RunFileError: a link, a FIFO, too large or too deeply nested
        raise UserError(
            f"{path} cannot be read ({' '.join(str(e).split())[:120]}); it is not a genlab run"
        ) from e
    if lines is None:
        return []
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise UserError(f"{path} is not a list of overrides; it is not a genlab run")
    try:
        parsed = OverridesParser.create().parse_overrides(lines)
    except HydraException as e:
        raise UserError(f"{path} holds an override that cannot be parsed ({str(e).splitlines()[0]})") from e
    for override in parsed:
        problem = replay_problem(override)
        if problem:
            raise UserError(
                f"{path} holds the override {override.input_line!r}, which genlab does not replay ({problem}); "
                "remove that line to resume"
            )
    return [line for line, override in zip(lines, parsed, strict=True) if not names_a_program(override, path)]


def replay_problem(override: Any) -> str | None:
    """Why a recorded override may not be replayed, or None when it may."""
    key = override.key_or_group
    if override.package or "/" in key or ".." in key or key.split(".")[0] == "hydra":
        return "no hydra keys, packages or config paths"
    if override.is_sweep_override():
        return "a run records single values, not sweeps"
    keys = [key, *(f"{key}.{inner}" for inner, _ in nested_items(override.value()))]
    if any("_target_" in k for k in keys):
        return "no _target_"
    if (CONFIG_DIR / key).is_dir() and not override.is_delete() and not isinstance(override.value(), dict):
        return group_value_problem(key, override.value())
    return None


def group_value_problem(group: str, value: Any) -> str | None:
    """A config-group choice must name options of genlab's own group (``dataset=mnist``, ``logger=[csv]``); a
    mapping value sets keys of the group's node instead, and its keys were checked above."""
    values = value if isinstance(value, list) else [value]
    options = sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))
    for option in values:
        if not (isinstance(option, str) and OPTION_NAME.fullmatch(option) and option in options):
            return f"{group} must name one of genlab's options: {', '.join(options)}"
    return None


def nested_items(value: Any, prefix: str = ""):
    """(dotted key, value) of every entry inside an override's dict value (``key={a:{b:1}}`` -> ``a``, ``a.b``)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield f"{prefix}{k}", v
            yield from nested_items(v, f"{prefix}{k}.")
    elif isinstance(value, list):
        for v in value:
            yield from nested_items(v, prefix)


def names_a_program(override: Any, path: Path) -> bool:
    """Inception weights may be a TorchScript file, i.e. a program: a run directory does not get to choose
    one, whether as ``...inception_weights=f`` or inside a section (``...eval_metrics={inception_weights:f}``).
    The user passes it again on the command line if they trust it."""
    key, value = override.key_or_group, override.value()
    named = [(key, value), *((f"{key}.{k}", v) for k, v in nested_items(value))]
    if not any(k.endswith("inception_weights") and v not in (None, "null") for k, v in named):
        return False
    print(
        f"genlab train: not replaying {override.input_line!r} from {path} (a network file is code); "
        "pass it again if you trust that file",
        file=sys.stderr,
    )
    return True


def check_replayed_code(replayed: list[str], own: list[str], path: Path) -> None:
    """The composed config's Hydra callbacks and logging handlers are those of the user's own command line:
    what a run directory replays never adds any."""
    with_run = hydra_code(replayed + own)
    if with_run is None:
        return  # the command does not compose: the run itself reports why, in one line
    alone = hydra_code(own) or {}
    changed = [k for k in HYDRA_CODE_KEYS if with_run[k] != alone.get(k)]
    if changed:
        raise UserError(
            f"the overrides recorded in {path} change hydra.{changed[0]}, which genlab does not take from a run "
            "directory; remove them from that file to resume"
        )


def hydra_code(overrides: list[str]) -> dict[str, Any] | None:
    """The Hydra callbacks and logging configs ``genlab train <overrides>`` composes (unresolved), or None."""
    from omegaconf import OmegaConf

    from genlab.commands.compose import compose_config

    try:
        cfg = compose_config("train", overrides, return_hydra=True)
        return {k: OmegaConf.to_container(cfg.hydra[k], resolve=False) for k in HYDRA_CODE_KEYS}
    except Exception:  # noqa: BLE001 - any composition failure is reported by the real run
        return None

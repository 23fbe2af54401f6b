"""The ``genlab`` command: ``genlab train|sample|eval [hydra overrides]``.

Each subcommand is a Hydra app over its own root config (``configs/<name>.yaml``), so every Hydra feature
(``-m``, ``--cfg job``, ``--help``, ``hydra.run.dir=``, ``+key=``, ``~key``) works through it. The task
functions themselves (``genlab.train.train`` ...) are plain functions. User mistakes end in ONE line on
stderr and exit code 2; ``--debug`` (or ``HYDRA_FULL_ERROR=1``) shows the traceback instead.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from genlab import __version__
from genlab.errors import GenlabError

log = logging.getLogger("genlab")

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

# subcommand -> (root config name, "module:function" returning the value the sweeper sees, help line)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "train": ("train", "genlab.train:train_task", "train one experiment or a sweep (-m)"),
    "sample": ("sample", "genlab.sample:sample", "write samples of a checkpoint to .png/.npy"),
    "eval": ("eval", "genlab.evaluate:evaluate", "evaluate a checkpoint (FID/KID/IS, PRDC, NLL, modes)"),
}

USAGE = "usage: genlab {train,sample,eval} [--debug] [-m] [--cfg job] [key=value ...]"


def print_help() -> None:
    print(f"genlab {__version__}: config-driven experiments for generative image models (GANs, VAEs)\n")
    print(USAGE + "\n\ncommands:")
    for name, (_, _, text) in COMMANDS.items():
        print(f"  {name:<8} {text}")
    print("\n`genlab <command> --help` lists that command's config groups and keys.")
    print("Examples: genlab train model=vae dataset=mnist | genlab train -m optimizer.lr=1e-4,2e-4")


class UserError(Exception):
    """Raised inside the CLI for problems with the command line itself."""


def load_task(spec: str) -> Callable[[DictConfig], Any]:
    module, func = spec.split(":")
    return getattr(importlib.import_module(module), func)


def fail(command: str, message: str, code: int = 2) -> None:
    message = str(message)
    if "Original Traceback" in message:  # re-raised from a DataLoader worker: keep the worker's own message
        message = [ln for ln in message.splitlines() if ln.strip()][-1].split(": ", 1)[-1]
    prefix = f"genlab {command}" if command else "genlab"
    print(f"{prefix}: error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(code)


def run(command: str, args: list[str], debug: bool) -> Any:
    config_name, task_spec, _ = COMMANDS[command]

    def job(cfg: DictConfig) -> Any:
        try:
            return load_task(task_spec)(cfg)  # imported here: --help / --cfg stay fast
        except GenlabError as e:  # a user mistake inside the job: one line, no traceback
            if debug:
                raise
            if in_sweep():  # let the sweeper record a failed job (Optuna's max_failure_rate), no traceback
                log.error("job failed: %s", " ".join(str(e).split()))
                raise
            fail(command, str(e), e.exit_code)

    entry = hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)(job)
    saved_argv, saved_env = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    sys.argv = [f"genlab-{command}", *args]
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let composition errors reach us; we print them as one line
    try:
        return entry()
    except Exception as e:  # noqa: BLE001 - classified below; unknown errors are bugs and re-raised
        message = describe_hydra_error(e)
        if debug or message is None:
            raise
        fail(command, message)
    finally:
        sys.argv = saved_argv
        if saved_env is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_env


def in_sweep() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def describe_hydra_error(e: BaseException) -> str | None:
    """One line for config-composition mistakes (unknown option/key, bad override syntax); None for bugs."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(e, GenlabError):
        return str(e)
    if isinstance(e, MissingConfigException):
        missing = e.missing_cfg_file or ""
        group, _, option = missing.rpartition("/")
        if group and e.options:
            return f"{group}={option} is not a known option; allowed: {', '.join(sorted(e.options))}"
        return str(e).splitlines()[0]
    if isinstance(e, ConfigCompositionException):
        first = str(e).splitlines()[0]
        cause = e.__cause__
        if first.startswith("Could not override '") and cause is not None and "not in struct" in str(cause):
            key = first.split("'")[1]
            return f"{key} is not a known key; check the spelling (`--cfg job` prints the config) or add a new key with +{key}=<value>"
        if "Could not append to config" in first:
            key = first.split("'")[1] if "'" in first else "?"
            return f"{key} already exists; set it without '+' ({key}=<value>)"
        return first
    if isinstance(e, OverrideParseException):
        return f"cannot parse override: {str(e).splitlines()[0]}"
    if isinstance(e, OmegaConfBaseException):
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        key = getattr(e, "full_key", None)
        return f"{key}: {lines[0]}" if key else lines[0]
    return None


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
    stored = run / ".hydra" / "overrides.yaml"
    if not stored.is_file():
        raise UserError(
            f"resume={run_dir} is not a genlab run directory (no .hydra/overrides.yaml); pass a dir under outputs/runs/"
        )
    if ckpt in (None, "null"):
        ckpt = str(run / "checkpoints" / "last.ckpt")
        if not Path(ckpt).is_file():
            raise UserError(f"resume={run_dir} has no checkpoints/last.ckpt yet; start the run again instead")
    import yaml

    dropped = ("resume=", "ckpt_path=", "hydra.run.dir=")
    previous = [o for o in yaml.safe_load(stored.read_text()) or [] if not o.startswith(dropped)]
    new = [a for a in args if not a.startswith(dropped)]
    quoted = lambda p: "'" + str(Path(p).resolve()).replace("\\", "\\\\").replace("'", "\\'") + "'"  # noqa: E731
    return [
        *previous,
        *new,
        f"resume={quoted(run)}",
        f"ckpt_path={quoted(ckpt)}",
        f"hydra.run.dir={quoted(run)}",
    ]


def main(argv: list[str] | None = None) -> Any:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print_help()
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"genlab {__version__}")
        return 0
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        fail("", f"unknown command {command!r}; choose one of: {', '.join(COMMANDS)} (genlab --help)")
    debug = "--debug" in args or os.environ.get("HYDRA_FULL_ERROR") == "1"
    args = [a for a in args if a != "--debug"]
    if command == "train" and not any(a in ("--cfg", "-c", "--help", "-h", "--hydra-help") for a in args):
        try:
            args = expand_resume(args)
        except UserError as e:
            fail(command, str(e))
    return run(command, args, debug)

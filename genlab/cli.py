"""The ``genlab`` command: ``genlab train|sample|eval [hydra overrides]``.

Each subcommand is a Hydra app over its own root config (``configs/<name>.yaml``), so every Hydra feature
(``-m``, ``--cfg job``, ``--help``, ``hydra.run.dir=``, ``+key=``, ``~key``) works through it. The task
functions themselves (``genlab.run.train.train`` ...) are plain functions. User mistakes end in ONE line on
stderr and exit code 2; ``--debug`` (or ``HYDRA_FULL_ERROR=1``) shows the traceback instead.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from genlab import __version__
from genlab.commands.help import register_resolvers
from genlab.commands.replay import expand_resume
from genlab.config.schema import closest
from genlab.run.sections import store_trainer_schema
from genlab.utils.errors import GenlabError, RunInterrupted, UserError
from genlab.utils.hydra_context import in_sweep
from genlab.utils.quiet import quiet

log = logging.getLogger("genlab")

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
register_resolvers()


def train_task(cfg: DictConfig) -> Any:
    from genlab.run.train import train_task

    return train_task(cfg)


def sample_task(cfg: DictConfig) -> Any:
    from genlab.commands.sample import sample

    return sample(cfg)


def eval_task(cfg: DictConfig) -> Any:
    from genlab.commands.evaluate import evaluate

    return evaluate(cfg)


# subcommand -> (root config name, task function (imported when it runs: --help / --cfg stay fast), help line)
COMMANDS: dict[str, tuple[str, Callable[[DictConfig], Any], str]] = {
    "train": ("train", train_task, "train one experiment or a sweep (-m)"),
    "sample": ("sample", sample_task, "write samples of a checkpoint to .png/.npy"),
    "eval": ("eval", eval_task, "evaluate a checkpoint (FID/KID/IS, PRDC, NLL, modes)"),
}


def report_command(args: list[str]) -> int:
    from genlab.commands.report import main as report

    return report(args)


def health_command(args: list[str]) -> int:
    from genlab.commands.health import health

    return health(args)


def clean_command(args: list[str]) -> int:
    from genlab.commands.clean import main as clean_main

    return clean_main(args)


# subcommands that are not Hydra apps: name -> (function of the arguments returning the exit code, help line)
PLAIN_COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "report": (report_command, "compare runs and sweeps in one HTML page (+ leaderboard.csv, report.md)"),
    "health": (health_command, "print the training-health verdicts of run directories"),
    "clean": (
        clean_command,
        "list run directories (status, size, age); delete failed or old ones with --yes",
    ),
}

USAGE = (
    "usage: genlab {train,sample,eval} [--debug] [-m] [--cfg job] [key=value ...]\n"
    "       genlab report <run or sweep dir> ... [out=<page.html>] | genlab clean [options]"
)


def print_help() -> None:
    print(f"genlab {__version__}: config-driven experiments for generative image models (GANs, VAEs)\n")
    print(USAGE + "\n\ncommands:")
    for name, (_, _, text) in COMMANDS.items():
        print(f"  {name:<8} {text}")
    for name, (_, text) in PLAIN_COMMANDS.items():
        print(f"  {name:<8} {text}")
    print("\n`genlab <command> --help` lists that command's config groups and keys.")
    print("Examples: genlab train model=vae dataset=mnist | genlab train -m optimizer.lr=1e-4,2e-4")


def fail(command: str, message: str, code: int = 2) -> None:
    message = str(message)
    if "Original Traceback" in message:  # re-raised from a DataLoader worker: keep the worker's own message
        message = [ln for ln in message.splitlines() if ln.strip()][-1].split(": ", 1)[-1]
    prefix = f"genlab {command}" if command else "genlab"
    print(f"{prefix}: error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(code)


def run(command: str, args: list[str], debug: bool) -> Any:
    config_name, task, _ = COMMANDS[command]

    def job(cfg: DictConfig) -> Any:
        try:
            return task(cfg)
        except GenlabError as e:  # a user mistake inside the job: one line, no traceback
            if command == "train":
                remove_if_empty(job_output_dir())
            if debug:
                raise
            if in_sweep():  # let the sweeper record a failed job (Optuna's max_failure_rate), no traceback
                log.error("job failed: %s", " ".join(str(e).split()))
                raise
            if isinstance(e, RunInterrupted):
                print(f"genlab {command}: {' '.join(str(e).split())}", file=sys.stderr)
                raise SystemExit(e.exit_code) from None
            fail(command, str(e), e.exit_code)

    entry = hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)(job)
    saved_argv, saved_env = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    # Lightning's ddp launcher starts the node's other processes as `python <sys.argv[0]> <sys.argv[1:]>` (or
    # `python -m <main module> ...`): a real file here, and main() gives those processes back their command
    script = saved_argv[0] if saved_argv and Path(saved_argv[0]).is_file() else f"genlab-{command}"
    sys.argv = [script, *args]
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


def job_output_dir() -> Path | None:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    return Path(HydraConfig.get().runtime.output_dir)


def remove_if_empty(path: Path | None) -> None:
    """A rejected command leaves no run directory: Hydra made it before genlab saw the config."""
    if path is None or not path.is_dir() or any(p.name != "train.log" for p in path.iterdir()):
        return
    log_file = path / "train.log"
    if log_file.is_symlink() or (log_file.exists() and not log_file.is_file()):
        return  # not the log genlab wrote: someone else's entry, left alone
    for handler in list(logging.getLogger().handlers):  # the job's delayed log file would re-create it
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == path.resolve():
            logging.getLogger().removeHandler(handler)
            handler.close()
    try:
        (path / "train.log").unlink(missing_ok=True)
        path.rmdir()  # only ever succeeds on an empty directory
    except OSError:
        pass


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
            parent = getattr(cause, "parent_node", None)
            hint = closest(key.rpartition(".")[2], list(parent.keys()) if parent is not None else [])
            return (
                f"{key} is not a known key; {hint or 'check the spelling'} (`--cfg job` prints the config), or "
                f"add a new key with +{key}=<value>"
            )
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
    if isinstance(e, OSError) and e.filename:  # the file system refused Hydra's run dir or log file
        return (
            f"cannot write {e.filename}: {e.strerror or e}; choose a writable place with "
            "paths.output_dir=<dir> or hydra.run.dir=<dir>"
        )
    return None


def check_output_paths(args: list[str]) -> None:
    """Run directories that cannot exist, refused before Hydra tries to make them."""
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+") in ("hydra.run.dir", "hydra.sweep.dir", "paths.output_dir"):
            if not value.strip().strip("'\"").strip():
                raise UserError(
                    f"{key.lstrip('+')} is empty; pass a directory (e.g. {key.lstrip('+')}=outputs/my_run)"
                )


def check_arguments(command: str, args: list[str]) -> None:
    """Hydra's own argument parser, its usage errors (an unknown --flag, an override after a flag and its
    value) as one line instead of a usage block."""
    from genlab.utils.compat import hydra_args_parser

    if any(a in ("-h", "--help", "--hydra-help", "--version") for a in args):
        return
    parser = hydra_args_parser()

    def error(message: str) -> None:
        raise UserError(f"{message}; usage: genlab {command} [--cfg job] [-m] key=value ... (flags first)")

    parser.error = error  # type: ignore[method-assign]
    parsed = parser.parse_args(args)
    modes = {"--run": parsed.run, "-m": parsed.multirun, "--cfg": parsed.cfg, "--info": parsed.info}
    if sum(bool(on) for on in modes.values()) > 1:
        raise UserError(
            f"{', '.join(k for k, on in modes.items() if on)} cannot be combined; pass one of them"
        )


def check_group_overrides(args: list[str]) -> None:
    """``dataset=1``, ``trainer=null``, ``logger=[1]``: Hydra fails on these with a traceback."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        overrides = OverridesParser.create().parse_overrides([a for a in args if not a.startswith("-")])
    except HydraException:
        return  # Hydra reports unparsable overrides itself
    for override in overrides:
        group = override.key_or_group
        if override.is_delete() or override.is_sweep_override() or not (CONFIG_DIR / group).is_dir():
            continue
        value = override.value()
        if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            continue
        options = sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))
        raise UserError(
            f"{group}={override.get_value_element_as_str()} is not an option of {group}; allowed: "
            f"{', '.join(options)} (remove an optional group with ~{group})"
        )


def is_ddp_child(argv: list[str]) -> bool:
    """A process Lightning's ddp launcher started for another device of `genlab train trainer=ddp`: it re-runs
    the command line without the subcommand, plus its own ``hydra.job.name=train_ddp_process_<local rank>``."""
    return "LOCAL_RANK" in os.environ and any(a.startswith("hydra.job.name=train_ddp_process_") for a in argv)


def main(argv: list[str] | None = None) -> int:
    try:
        return dispatch(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:  # e.g. `genlab train --help | head`: the reader left; nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print_help()
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"genlab {__version__}")
        return 0
    if argv[0] not in COMMANDS and is_ddp_child(argv):
        argv = ["train", *argv]
    command, args = argv[0], argv[1:]
    quiet()
    store_trainer_schema()
    if command not in COMMANDS and command not in PLAIN_COMMANDS:
        known = ", ".join([*COMMANDS, *PLAIN_COMMANDS])
        fail("", f"unknown command {command!r}; choose one of: {known} (genlab --help)")
    debug = "--debug" in args or os.environ.get("HYDRA_FULL_ERROR") == "1"
    args = [a for a in args if a != "--debug"]
    if command in PLAIN_COMMANDS:
        try:
            return PLAIN_COMMANDS[command][0](args)
        except GenlabError as e:
            if debug:
                raise
            fail(command, str(e), e.exit_code)
    try:
        check_output_paths(args)
        if command == "train" and not any(a in ("--cfg", "-c", "--help", "-h", "--hydra-help") for a in args):
            args = expand_resume(args)
        check_arguments(command, args)
        check_group_overrides(args)
    except UserError as e:
        fail(command, str(e))
    run(command, args, debug)
    return 0

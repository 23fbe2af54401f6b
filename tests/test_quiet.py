"""No library banners on the console: Lightning's tips and machine lines, empty FLOPs, Optuna's plugin lines."""

from __future__ import annotations

import inspect
import logging
import os
import subprocess
import sys

import pytest
from runs_util import RING_GAN, SHAPES_VAE, run_cli, short
from subprocess_util import genlab_env

from genlab.run.callbacks.summary import format_summary
from genlab.utils.quiet import LIGHTNING_INFO_LOGGERS, LIGHTNING_NOISE, quiet

NOISE = ("litlogger", "LitLogger", "GPU available", "TPU available", "HPU available", "FLOPs", "💡")


def test_a_short_run_prints_no_banner_and_a_summary_without_flops(tmp_path, capsys):
    code, out, err = run_cli(
        capsys, "train", *SHAPES_VAE, *short(2, 2), "threads=1", f"hydra.run.dir={tmp_path / 'run'}"
    )
    assert code == 0, err
    for text in (out + err, (tmp_path / "run" / "train.log").read_text()):
        assert not [word for word in NOISE if word in text]
        assert "model summary" in text and "Params" in text and "encoder" in text


def test_real_warnings_still_show(caplog):
    quiet()
    logger = logging.getLogger(LIGHTNING_INFO_LOGGERS[0])
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.info("GPU available: False, used: False")
        logger.warning("GPU available but not used.")  # a warning, not the banner: its prefix differs
        logger.info("`Trainer.fit` stopped: `max_steps=4` reached.")
    assert [r.getMessage() for r in caplog.records] == [
        "GPU available but not used.",
        "`Trainer.fit` stopped: `max_steps=4` reached.",
    ]


def test_the_filtered_wording_is_still_lightnings():
    """The prefixes in genlab.utils.quiet are Lightning's private wording: fail here when Lightning rewords them."""
    from pytorch_lightning.trainer import setup
    from pytorch_lightning.trainer.connectors import callback_connector
    from pytorch_lightning.trainer.connectors.logger_connector import logger_connector

    sources = "".join(inspect.getsource(m) for m in (setup, callback_connector, logger_connector))
    for prefix in LIGHTNING_NOISE:
        if prefix != "HPU available:":  # printed by lightning-habana's accelerator, when installed
            assert f'"{prefix}' in sources or f'f"{prefix}' in sources, prefix
    from lightning_fabric.utilities import rank_zero

    assert "pytorch_lightning" in LIGHTNING_INFO_LOGGERS[0] and hasattr(rank_zero, "rank_zero_info")


def test_summary_keeps_flops_only_when_measured():
    data = [(" ", ["0"]), ("Name", ["net"]), ("Type", ["Linear"]), ("Params", ["10"]), ("FLOPs", ["0"])]
    plain = format_summary(data, 10, 10, 0.0, {"train": 1, "eval": 0}, total_flops=0)
    assert "FLOPs" not in plain and "Linear" in plain and "10         trainable params" in plain
    measured = [*data[:-1], ("FLOPs", ["2 K"])]
    assert "FLOPs" in format_summary(measured, 10, 10, 0.0, {"train": 1, "eval": 0}, total_flops=2000)


def test_no_color_only_without_a_terminal(monkeypatch):
    class Tty:
        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    quiet(Tty())
    assert "NO_COLOR" not in os.environ
    quiet(open(os.devnull, "w"))  # noqa: SIM115 - a plain file stands in for a pipe
    assert os.environ["NO_COLOR"] == "1"


@pytest.mark.slow  # end-to-end in fresh processes; the fast tier covers the same code in-process
def test_optuna_sweep_output_has_no_plugin_lines_and_no_colour_codes(tmp_path):
    env = genlab_env()
    env.pop("NO_COLOR", None)
    args = [*RING_GAN, *short(2, 2), "threads=1", "hparams_search=gan_optuna", "hydra.sweeper.n_trials=1"]
    proc = subprocess.run(
        [sys.executable, "-m", "genlab", "train", *args, f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-2000:]
    assert "A new study created" in text  # Optuna still speaks, in plain text
    assert "\x1b[" not in text
    assert "setup plugin" not in text
    assert not [word for word in NOISE if word in text]


@pytest.fixture(autouse=True)
def _restore_env(monkeypatch):
    monkeypatch.setenv("NO_COLOR", os.environ.get("NO_COLOR", ""))  # quiet() may set it: undo after each test
    if not os.environ["NO_COLOR"]:
        monkeypatch.delenv("NO_COLOR")

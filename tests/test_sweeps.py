"""Sweeps: basic multirun, Optuna, joblib, SLURM config, DDP on CPU (also inside a multirun)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from runs_util import RING_GAN, short

from genlab.commands.compose import compose_config

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def genlab(cwd: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    res = subprocess.run(
        [sys.executable, "-m", "genlab", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def job_dirs(sweep_dir: Path) -> list[Path]:
    """Job dirs, in job order: ``<job number>`` or ``<job number>_<swept key>:<value>+...``."""
    jobs = [p for p in sweep_dir.iterdir() if p.is_dir() and p.name.split("_")[0].isdigit()]
    return sorted(jobs, key=lambda p: int(p.name.split("_")[0]))


@pytest.mark.slow  # end-to-end in fresh processes; the fast tier covers the same code in-process
def test_two_job_multirun_from_outside_the_repo(tmp_path):
    """`genlab train -m` runs from any directory; one run dir per job, each with its own TensorBoard run."""
    sweep = tmp_path / "sweep"
    genlab(
        tmp_path,
        "train",
        "-m",
        f"hydra.sweep.dir={sweep}",
        *RING_GAN,
        *short(10, 5),
        "optimizer.lr=1e-4,2e-4",
    )
    jobs = job_dirs(sweep)
    assert [j.name for j in jobs] == ["0_optimizer.lr:0.0001", "1_optimizer.lr:0.0002"]  # say what differs
    lrs = set()
    for job in jobs:
        assert (job / "checkpoints" / "last.ckpt").is_file()
        assert list((job / "tensorboard").glob("events.out.tfevents.*"))
        assert json.loads((job / "metrics.json").read_text())["global_step"] == 10
        lrs.add((job / ".hydra" / "overrides.yaml").read_text().split("optimizer.lr=")[1].split()[0])
    assert lrs == {"0.0001", "0.0002"}


def test_slurm_launcher_config_composes():
    cfg = compose_config("train", ["hydra/launcher=slurm", "hydra.launcher.partition=gpu"], return_hydra=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert launcher.partition == "gpu" and launcher.gpus_per_node == 1 and launcher.timeout_min == 240


def test_optuna_search_config_composes():
    cfg = compose_config(
        "train", ["model.net=mlp", "dataset=ring", "hparams_search=gan_optuna"], return_hydra=True
    )
    assert cfg.optimized_metric == "val/hq_fraction"
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")
    assert cfg.hydra.sweeper.direction == "maximize"


@pytest.mark.slow
def test_optuna_sweep_optimizes_the_returned_metric(tmp_path):
    sweep = tmp_path / "sweep"
    genlab(
        tmp_path,
        "train",
        "hparams_search=gan_optuna",
        f"hydra.sweep.dir={sweep}",
        *RING_GAN,
        *short(20, 10),
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
    )
    best = (sweep / "optimization_results.yaml").read_text()
    assert "best_value" in best and "best_params" in best
    assert len(job_dirs(sweep)) == 2


@pytest.mark.slow
def test_joblib_launcher_runs_jobs_in_parallel_processes(tmp_path):
    sweep = tmp_path / "sweep"
    genlab(
        tmp_path,
        "train",
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={sweep}",
        *RING_GAN,
        *short(10, 5),
        "seed=1,2",
    )
    jobs = job_dirs(sweep)
    assert [json.loads((j / "metrics.json").read_text())["global_step"] for j in jobs] == [10, 10]
    assert [j.name for j in jobs] == ["0_seed:1", "1_seed:2"]  # labels in the worker processes too


@pytest.mark.slow
def test_ddp_cpu_gan_single_run(tmp_path):
    """Two CPU processes train the GAN's manual optimization; global batch split across ranks."""
    run = tmp_path / "run"
    genlab(tmp_path, "train", f"hydra.run.dir={run}", *RING_GAN, *short(10, 5), "trainer=ddp_cpu")
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 10
    assert (run / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
def test_ddp_cpu_inside_a_two_job_multirun(tmp_path):
    """Multirun x DDP (Lightning #11300): each job runs its own 2-process group in its own dir."""
    sweep = tmp_path / "sweep"
    genlab(
        tmp_path,
        "train",
        "-m",
        f"hydra.sweep.dir={sweep}",
        "trainer=ddp_cpu",
        *RING_GAN,
        *short(10, 5),
        "model=gan",
        "optimizer.lr=1e-4,2e-4",
    )
    jobs = job_dirs(sweep)
    assert [j.name for j in jobs] == ["0_optimizer.lr:0.0001", "1_optimizer.lr:0.0002"]  # say what differs
    for job in jobs:
        assert json.loads((job / "metrics.json").read_text())["global_step"] == 10
        assert (job / "checkpoints" / "last.ckpt").is_file()
    assert not list(sweep.glob("*/*/.hydra"))  # no nested runs started by re-executed workers

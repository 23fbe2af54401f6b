"""The everyday run: progress without a terminal, the end-of-run summary, TensorBoard a person can read,
the CPU thread default."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from runs_util import SHAPES_VAE, run_cli, short, tensorboard
from tensorboard import context
from tensorboard.backend.event_processing import data_provider
from tensorboard.backend.event_processing import plugin_event_multiplexer as multiplexer
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import backend_context, metadata

from genlab.cli import main
from genlab.run.summary import key_metrics, latest_grid
from genlab.utils.threads import busy_cores, default_threads

REPO = Path(__file__).resolve().parents[1]


def test_default_threads_uses_the_free_cores():
    assert default_threads(cores=2, busy=0) == 2
    assert default_threads(cores=2, busy=1) == 1  # another CPU-bound process: one thread, no spinning
    assert default_threads(cores=2, busy=5) == 1
    assert default_threads(cores=16, busy=2, processes=2) == 7  # DDP: the free cores shared by the ranks


def test_busy_cores_reads_procs_running(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  1 2 3\nprocs_running 3\nprocs_blocked 0\n")
    assert busy_cores(samples=3, interval_s=0, stat=str(stat)) == 2  # this process itself not counted


def test_key_metrics_put_the_monitored_metric_first():
    metrics = {"train/loss": 3.0, "val/recon": 2.0, "val/neg_elbo": 1.0, "global_step": 40, "status": "x"}
    assert list(key_metrics(metrics, "val/neg_elbo")) == ["val/neg_elbo", "val/recon"]
    assert list(key_metrics({"train/loss": 3.0}, None)) == ["train/loss"]


def test_latest_grid_orders_by_step(tmp_path):
    (tmp_path / "samples").mkdir()
    for step in (900, 10000, 5):
        (tmp_path / "samples" / f"samples_step{step:07d}.png").write_bytes(b"")
    assert latest_grid(tmp_path).name == "samples_step0010000.png"


@pytest.fixture(scope="module")
def short_vae_run(tmp_path_factory):
    """A VAE run shorter than its validation interval, as a user's command without a terminal."""
    run_dir = tmp_path_factory.mktemp("vae") / "run"
    args = [*SHAPES_VAE, *short(40, 100), "threads=1", f"hydra.run.dir={run_dir}"]
    res = subprocess.run(
        [sys.executable, "-m", "genlab", "train", *args],
        cwd=tmp_path_factory.mktemp("cwd"),
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return run_dir, res.stdout + res.stderr


def test_progress_line_within_the_first_30_steps_without_a_terminal(short_vae_run):
    _, output = short_vae_run
    steps = [int(m) for m in re.findall(r"\] - training: (\d+)/40 steps \(\d+%\), [\d.]+ steps/s", output)]
    assert steps and steps[0] <= 30, output[-2000:]
    assert "final validation at step 40" in output and "validation at step 40 done in" in output


def test_run_ends_with_a_summary_naming_the_sample_grid(short_vae_run):
    run_dir, output = short_vae_run
    grid = re.search(r"samples: (\S+\.png)", output)
    assert grid and Path(grid.group(1)) == run_dir.resolve() / "samples" / "samples_step0000040.png"
    assert Path(grid.group(1)).is_file()
    assert re.search(r"finished at step 40 in [\d.]+s", output)
    assert re.search(r"metrics: val/neg_elbo=[\d.]+ ", output)  # the monitored metric first
    assert f"genlab eval ckpt={run_dir.resolve()}/checkpoints/last.ckpt" in output


def test_end_of_training_grids_come_after_the_final_validation(short_vae_run):
    run_dir, _ = short_vae_run
    images = tensorboard(run_dir).Images("images/reconstructions")  # filled by the final validation only
    assert [e.step for e in images] == [40]


def hparams_experiment(logdir: Path):
    """The HParams experiment as TensorBoard's own HParams plugin computes it for ``logdir``."""
    mux = multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(logdir))
    backend = backend_context.Context(base_plugin.TBContext(logdir=str(logdir), data_provider=provider))
    ctx = context.RequestContext()
    runs = backend.hparams_metadata(ctx, "")
    experiment = backend.experiment_from_metadata(
        ctx, "", True, runs, backend.hparams_from_data_provider(ctx, "", limit=None)
    )
    return runs, experiment


@pytest.fixture(scope="module")
def mixed_sweep(tmp_path_factory):
    sweep = tmp_path_factory.mktemp("mixed") / "sweep"
    tiny = ["dataset=shapes", "dataset.batch_size=16", "model.latent_dim=8", "threads=1"]
    assert main(["train", "-m", "model=gan,vae", *tiny, *short(4, 2), f"hydra.sweep.dir={sweep}"]) == 0
    return sweep


def test_mixed_sweep_declares_every_familys_metrics_in_hparams(mixed_sweep):
    runs, experiment = hparams_experiment(mixed_sweep)
    assert sorted(runs) == ["0_model:gan/tensorboard", "1_model:vae/tensorboard"]  # named by what differs
    assert not any(metadata.EXPERIMENT_TAG in tags for tags in runs.values())  # no run declares for all
    metrics = {m.name.tag for m in experiment.metric_infos}
    assert {"val/loss_d", "val/d_real", "val/neg_elbo", "val/iw_nll", "val/kl"} <= metrics
    first = experiment.hparam_infos[0]
    assert first.differs and first.name == "model.family"  # the swept keys lead the table


def test_time_series_has_no_epoch_or_step0_final_cards(mixed_sweep):
    for job in ("0_model:gan", "1_model:vae"):
        scalars = tensorboard(mixed_sweep / job).Tags()["scalars"]
        assert scalars and "epoch" not in scalars
        assert not [t for t in scalars if t.startswith("final/")]


def test_a_job_dir_label_needs_no_quoting(mixed_sweep, tmp_path, capsys):
    ckpt = mixed_sweep / "1_model:vae" / "checkpoints" / "last.ckpt"
    code, _, err = run_cli(capsys, "sample", f"ckpt={ckpt}", "n=4", f"out={tmp_path}/s.png")
    assert code == 0, err
    assert (tmp_path / "s.png").is_file()

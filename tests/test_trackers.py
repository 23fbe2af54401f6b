"""Experiment trackers (genlab/run/loggers.py): MLflow against a real tracking server and its local default
store, W&B offline runs read back from their files, and `genlab report` whatever the loggers were."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from runs_util import RING_GAN, run_cli, short
from subprocess_util import free_port, genlab_env

pytest.importorskip("mlflow", reason="the trackers extra is not installed (pip install -e .[dev])")
pytest.importorskip("wandb", reason="the trackers extra is not installed (pip install -e .[dev])")

from mlflow import MlflowClient  # noqa: E402

TINY = [*RING_GAN, *short(10, 5), "threads=1"]
# a training process with two trackers costs ~15 s: the tracker tests run in CI's slow tier
pytestmark = pytest.mark.slow


def wandb_records(run_dir: Path) -> list:
    """The records of a W&B offline run's ``.wandb`` file (LevelDB-style log blocks of protobuf records)."""
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    raw, pos, buf, out = path.read_bytes(), 7, b"", []  # 7: the ":W&B" header, its magic and version
    while pos + 7 <= len(raw):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a record header is padding
            pos += 32768 - pos % 32768
            continue
        _crc, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        buf, pos = buf + raw[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 4):  # a FULL record, or the LAST piece of one
            record = pb.Record()
            record.ParseFromString(buf)
            out.append(record)
            buf = b""
    return out


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory) -> Path:
    """One tiny run logged to MLflow's local default store and to W&B offline (no TensorBoard)."""
    root = tmp_path_factory.mktemp("trackers")
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "WANDB_API_KEY")}
    res = subprocess.run(
        [sys.executable, "-m", "genlab", "train", *TINY, "logger=[mlflow,wandb]", f"hydra.run.dir={root / 'run'}",
         f"paths.output_dir={root / 'outputs'}"],
        cwd=root, env=genlab_env(**{**env, "WANDB_SILENT": "true"}), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    return root


def test_mlflow_local_store_holds_params_metrics_images_and_status(tracked_run):
    client = MlflowClient(f"sqlite:///{tracked_run / 'outputs' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("genlab").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.params["model.latent_dim"] == "4" and run.data.params["trainer.max_steps"] == "10"
    assert {"train/loss_d", "val/loss_g"} <= set(run.data.metrics)
    assert run.data.tags["genlab.family"] == "gan"
    images = [a.path for a in client.list_artifacts(run.info.run_id, "images")]
    assert any("scatter" in p and "step+10" in p and p.endswith(".png") for p in images), images


def test_wandb_offline_run_holds_the_same_content(tracked_run):
    records = wandb_records(tracked_run / "run")
    kinds = [r.WhichOneof("record_type") for r in records]
    config = {
        u.key: json.loads(u.value_json) for r in records if r.HasField("config") for u in r.config.update
    }
    logged = {i.key or i.nested_key[0] for r in records if r.HasField("history") for i in r.history.item}
    (exit_record,) = [r.exit for r in records if r.HasField("exit")]
    assert config["model.latent_dim"] == 4 and config["trainer.max_steps"] == 10
    assert {"train/loss_d", "val/loss_g"} <= logged and "images/scatter" in logged
    assert exit_record.exit_code == 0 and "run" in kinds
    assert "genlab.family=gan" in next(r.run.tags for r in records if r.HasField("run"))
    assert list((tracked_run / "run").glob("wandb/offline-run-*/files/media/images/images/scatter_*.png"))


def test_report_works_without_tensorboard_events(tracked_run, capsys):
    code, _, err = run_cli(capsys, "report", str(tracked_run / "run"), f"out={tracked_run / 'page.html'}")
    assert code == 0, err
    assert "val/loss_g" in (tracked_run / "page.html").read_text()


@pytest.mark.slow
def test_a_run_and_a_sweep_against_a_real_mlflow_server(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination",
         str(tmp_path / "artifacts"), "--workers", "1"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "mlflow server did not start"
                time.sleep(0.5)
        env = genlab_env(MLFLOW_TRACKING_URI=uri)
        for args in (
            [f"hydra.run.dir={tmp_path / 'single'}"],
            ["-m", f"hydra.sweep.dir={tmp_path / 'sweep_a'}", "optimizer.lr=0.001,0.002"],
        ):
            res = subprocess.run(
                [sys.executable, "-m", "genlab", "train", *args, *TINY, "logger=mlflow"],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
            )  # fmt: skip
            assert res.returncode == 0, res.stderr[-3000:]
        client = MlflowClient(uri)
        (single,) = client.search_runs([client.get_experiment_by_name("genlab").experiment_id])
        sweep = client.search_runs([client.get_experiment_by_name("sweep_a").experiment_id])
        assert single.info.status == "FINISHED" and single.data.params["model.latent_dim"] == "4"
        assert sorted(r.data.params["optimizer.lr"] for r in sweep) == ["0.001", "0.002"]
        assert all(r.info.status == "FINISHED" and "val/loss_g" in r.data.metrics for r in sweep)
        assert len({r.data.tags["genlab.job"] for r in sweep}) == 2
        assert {r.data.tags["genlab.sweep"] for r in sweep} == {"sweep_a"}
        images = client.list_artifacts(sweep[0].info.run_id, "images")
        assert any(a.path.endswith(".png") for a in images)
    finally:
        server.terminate()
        server.wait(timeout=30)

"""Many nodes the way users launch them, on localhost: torchrun with two "nodes" of one CPU process each (gloo),
and Hydra's submitit launcher running two jobs locally (`hydra/launcher=submitit_local`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rank_probe import digest
from runs_util import RING_GAN
from subprocess_util import REPO, free_port, genlab_env

# a GAN whose global batch of 64 is split over 2 processes: 32 each; one epoch of 640 samples is 10 steps only
# if every process takes its own shard and half the global batch
TWO_PROCESS_GAN = [
    *RING_GAN,
    "dataset.n_train=640",
    "dataset.n_test=128",
    "trainer.max_epochs=1",
    "trainer.max_steps=1000",
    "trainer.val_check_interval=5",
    "trainer.limit_val_batches=1",
    "callbacks.model_checkpoint.every_n_train_steps=5",
    "trainer.accelerator=cpu",
    "trainer.strategy=ddp",  # the GAN family turns it into the ddp that finds unused parameters
    "threads=1",
]
PROBE = str(REPO / "tests" / "rank_probe.py")


def check_two_ranks(run: Path, probes: Path, num_nodes: int) -> None:
    ranks = [json.loads((probes / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [(r["rank"], r["world_size"], r["num_nodes"]) for r in ranks] == [
        (0, 2, num_nodes),
        (1, 2, num_nodes),
    ]
    assert [r["local_batch"] for r in ranks] == [32, 32]  # the global batch of 64, split
    assert ranks[0]["first_batch"] != ranks[1]["first_batch"]  # each rank its own shard
    assert [r["global_step"] for r in ranks] == [10, 10]
    assert ranks[0]["weights"] == ranks[1]["weights"]  # DDP kept every rank's weights identical
    # rank 0 owns the run directory: its record, and the final checkpoint holds the same weights
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["global_step"] == 10
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert digest(last["state_dict"]) == ranks[0]["weights"]
    assert not (run / ".genlab.lock").exists()


@pytest.mark.slow
def test_two_nodes_with_torchrun_split_the_global_batch_and_end_with_the_same_weights(tmp_path):
    run, probes = tmp_path / "run", tmp_path / "ranks"
    port = free_port()
    train = [
        PROBE,
        "train",
        f"hydra.run.dir={run}",  # the same directory on every node (a shared file system on a cluster)
        *TWO_PROCESS_GAN,
        "trainer.devices=1",
        "trainer.num_nodes=2",
    ]
    nodes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes=2",
                "--nproc_per_node=1",
                f"--node_rank={rank}",
                "--master_addr=127.0.0.1",
                f"--master_port={port}",
                *train,
            ],
            cwd=tmp_path,
            env=genlab_env(GENLAB_RANK_PROBE=str(probes)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    try:
        outputs = [node.communicate(timeout=85)[0] for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(o[-2000:] for o in outputs)
    check_two_ranks(run, probes, num_nodes=2)


@pytest.mark.slow
def test_lightning_ddp_launcher_starts_the_other_device_process(tmp_path):
    """`genlab train trainer=ddp` without torchrun: Lightning re-runs the command for the node's other devices
    (here 2 CPU processes); they get their subcommand back and leave the run directory to rank 0."""
    run, probes = tmp_path / "run", tmp_path / "ranks"
    res = subprocess.run(
        [sys.executable, PROBE, "train", f"hydra.run.dir={run}", *TWO_PROCESS_GAN, "trainer.devices=2"],
        cwd=tmp_path,
        env=genlab_env(GENLAB_RANK_PROBE=str(probes)),
        capture_output=True,
        text=True,
        timeout=85,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "trainer.strategy: ddp_find_unused_parameters_true" in res.stdout + res.stderr
    check_two_ranks(run, probes, num_nodes=1)
    assert (run / "train_ddp_process_1.log").is_file()  # the second process logs beside rank 0


@pytest.mark.slow
def test_submitit_local_launcher_runs_two_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "genlab",
            "train",
            "-m",
            "hydra/launcher=submitit_local",
            f"hydra.sweep.dir={sweep}",
            *RING_GAN,
            "dataset.n_train=640",
            "dataset.n_test=128",
            "trainer.max_steps=4",
            "trainer.val_check_interval=2",
            "trainer.limit_val_batches=1",
            "callbacks.model_checkpoint.every_n_train_steps=2",
            "trainer.accelerator=cpu",
            "threads=1",
            "seed=1,2",
        ],
        cwd=tmp_path,
        env=genlab_env(),
        capture_output=True,
        text=True,
        timeout=85,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name[0].isdigit())
    assert [j.name for j in jobs] == ["0_seed:1", "1_seed:2"]
    for job in jobs:
        assert json.loads((job / "metrics.json").read_text())["global_step"] == 4
        assert (job / "checkpoints" / "last.ckpt").is_file()
    assert list(sweep.glob(".submitit/*/*_log.out"))  # each job ran as its own submitit process

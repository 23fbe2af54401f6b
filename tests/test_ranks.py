"""genlab.utils.ranks: which process of a multi-process run this is, from the launcher's environment variables."""

from __future__ import annotations

import pytest

from genlab.utils.ranks import RANK_VARIABLES, is_worker, launched_rank


@pytest.fixture
def clean_env(monkeypatch):
    for name in RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("env", "rank"),
    [
        ({}, 0),
        ({"RANK": "0", "LOCAL_RANK": "0", "GROUP_RANK": "0"}, 0),  # torchrun, first process of node 0
        ({"RANK": "3", "LOCAL_RANK": "1", "GROUP_RANK": "1"}, 3),  # torchrun, node 1
        ({"LOCAL_RANK": "1"}, 1),  # Lightning's ddp launcher, second device
        ({"NODE_RANK": "1"}, 1),  # Lightning's launcher on node 1, before it starts its devices
        ({"SLURM_PROCID": "5"}, 5),  # srun
        ({"RANK": "0", "SLURM_PROCID": "3"}, 0),  # torchrun started by an srun task: torchrun's rank decides
        ({"SLURM_PROCID": "0", "LOCAL_RANK": "1"}, 1),  # Lightning's launcher inside a one-task srun shell
        ({"SLURM_PROCID": "bad"}, 0),
    ],
)
def test_launched_rank(clean_env, env, rank):
    for name, value in env.items():
        clean_env.setenv(name, value)
    assert launched_rank() == rank


def test_a_single_process_run_owns_its_directory_whatever_the_environment(clean_env):
    clean_env.setenv("SLURM_PROCID", "2")  # e.g. one task of an allocation running its own experiment
    assert not is_worker(1)
    assert is_worker(4) and is_worker(None)
    clean_env.setenv("SLURM_PROCID", "0")
    assert not is_worker(4)

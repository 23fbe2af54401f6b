"""Shared fixtures: real MNIST / Fashion-MNIST copied from ../shared/datasets into a writable temp dir.

torchvision finds the .gz files, checks their MD5 and makes no network request (download=True).
Every test runs with its default data directory (dataset caches) and torch hub cache in a session temp dir,
so the suite writes nothing into the repository and never finds real Inception weights by accident.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

XDIST_WORKER = bool(os.environ.get("PYTEST_XDIST_WORKER"))
if XDIST_WORKER:
    # `make test` runs one pytest worker per core: each gets one intra-op thread so they do not oversubscribe
    torch.set_num_threads(1)


def shared_datasets() -> Path | None:
    for cand in (os.environ.get("GENLAB_SHARED_DATASETS"), REPO.parent / "shared" / "datasets"):
        if cand and (Path(cand) / "MNIST" / "raw").is_dir():
            return Path(cand)
    return None


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(tmp_path_factory):
    """GENLAB_DATA_DIR (default paths.data_dir and dataset data_dir) and TORCH_HOME (where the Inception weights
    are searched) in temp dirs, GENLAB_INCEPTION_WEIGHTS unset; subprocesses inherit them."""
    root = tmp_path_factory.mktemp("env")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_DATA_DIR", str(root / "data"))
        mp.setenv("TORCH_HOME", str(root / "torch_home"))
        mp.delenv("GENLAB_INCEPTION_WEIGHTS", raising=False)
        if XDIST_WORKER:  # in-process train/sample/eval with `threads: null` keep the worker's one thread
            mp.setattr("genlab.utils.threads.default_threads", lambda *args, **kwargs: 1)
        yield root


@pytest.fixture(scope="session")
def real_data_dir(tmp_path_factory) -> Path:
    """A writable data_dir holding MNIST/raw and FashionMNIST/raw (the real files)."""
    src = shared_datasets()
    if src is None:
        pytest.skip("real MNIST files not found (expected ../shared/datasets beside the repo)")
    dst = tmp_path_factory.mktemp("data")
    for name in ("MNIST", "FashionMNIST"):
        if (src / name).is_dir():
            shutil.copytree(src / name, dst / name)
    return dst


@pytest.fixture
def one_thread():
    """Small nets train several times faster on one intra-op thread than on an oversubscribed shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

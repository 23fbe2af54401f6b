"""Shared fixtures: real MNIST / Fashion-MNIST copied from ../shared/datasets into a writable temp dir.

torchvision finds the .gz files, checks their MD5 and makes no network request (download=True).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def shared_datasets() -> Path | None:
    for cand in (os.environ.get("GENLAB_SHARED_DATASETS"), REPO.parent / "shared" / "datasets"):
        if cand and (Path(cand) / "MNIST" / "raw").is_dir():
            return Path(cand)
    return None


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

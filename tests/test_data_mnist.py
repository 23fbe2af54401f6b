"""MNIST, Fashion-MNIST and Stacked MNIST on the real files (fixture ``real_data_dir``)."""

from __future__ import annotations

import gzip
import shutil
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
import torchvision
from builders import build

from genlab.data.images import TorchvisionDataModule
from genlab.data.stacked_mnist import StackedMNISTDataModule, stack_digits
from genlab.utils.errors import DataError


@pytest.fixture
def offline(monkeypatch):
    """Every download attempt fails as it does without network (hermetic even where there is network)."""

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture
def private_data_dir(real_data_dir, tmp_path):
    """A data_dir of our own (fresh cache) holding a copy of the real MNIST files."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in (real_data_dir / "MNIST" / "raw").glob("*.gz"):  # as downloaded: archives only
        shutil.copy(gz, raw)
    return tmp_path


def mnist(data_dir, **over) -> TorchvisionDataModule:
    cfg = dict(name="mnist", data_dir=str(data_dir), batch_size=100, seed=0, value_range=[-1.0, 1.0])
    return build(TorchvisionDataModule, **{**cfg, **over})


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_real_splits_shapes_ranges(real_data_dir, name):
    dm = mnist(real_data_dir, name=name)
    assert dm.spec.shape == (1, 28, 28) and dm.spec.num_classes == 10
    dm.setup()
    assert len(dm.labels("train")) == 60000 and len(dm.labels("test")) == 10000
    assert torch.equal(dm.labels("train").unique(), torch.arange(10))
    train = dm.train_dataloader()
    assert len(train) == 600
    x, y = next(iter(train))
    assert x.shape == (100, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.long
    assert x.min() == -1.0 and x.max() == 1.0
    val = dm.val_dataloader()
    assert len(val) == 100
    assert sum(len(b[1]) for b in val) == 10000


def test_matches_torchvision_reference(real_data_dir):
    """Our uint8 -> [0, 1] pipeline gives exactly torchvision's ToTensor() of the same test images."""
    dm = mnist(real_data_dir, value_range=[0.0, 1.0])
    ref = torchvision.datasets.MNIST(
        str(real_data_dir), train=False, transform=torchvision.transforms.ToTensor()
    )
    xs = torch.cat([b[0] for b in dm.val_dataloader()])  # val: unshuffled test split
    ys = torch.cat([b[1] for b in dm.val_dataloader()])
    for i in (0, 1, 4321, 9999):
        img, label = ref[i]
        assert torch.allclose(xs[i], img, atol=1e-6)
        assert ys[i] == label


def test_shuffling_is_deterministic_and_covers_the_split(real_data_dir):
    a = iter(mnist(real_data_dir, seed=1).train_dataloader())
    b = iter(mnist(real_data_dir, seed=1).train_dataloader())
    c = iter(mnist(real_data_dir, seed=2).train_dataloader())
    xa, xb, xc = next(a)[0], next(b)[0], next(c)[0]
    assert torch.equal(xa, xb) and not torch.equal(xa, xc)
    ys = torch.cat([y for _, y in mnist(real_data_dir, seed=1, batch_size=1000).train_dataloader()])
    assert torch.equal(torch.bincount(ys), torch.bincount(mnist(real_data_dir).labels("train")))


def test_resize_channels_and_range(real_data_dir):
    dm = mnist(real_data_dir, image_size=32, channels=3, value_range=[0.0, 1.0])
    assert dm.spec.shape == (3, 32, 32)
    x, _ = next(iter(dm.val_dataloader()))
    assert x.shape == (100, 3, 32, 32)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])
    assert 0.0 <= x.min() and x.max() <= 1.0
    # antialiased resize keeps the mean intensity of each digit (within a few %)
    native = next(iter(mnist(real_data_dir, value_range=[0.0, 1.0]).val_dataloader()))[0]
    assert torch.allclose(x[:, 0].mean((1, 2)), native[:, 0].mean((1, 2)), rtol=0.05, atol=0.005)


def test_real_samples(real_data_dir):
    dm = mnist(real_data_dir)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    a, b = dm.real_samples(64, generator=g1), dm.real_samples(64, generator=g2)
    assert a.shape == (64, 1, 28, 28) and a.device.type == "cpu"
    assert torch.equal(a, b) and a.min() >= -1 and a.max() <= 1
    assert dm.real_samples(12000, split="test").shape[0] == 12000  # more than the split: with replacement


def test_cache_written_once_and_reused(private_data_dir, monkeypatch):
    dm = mnist(private_data_dir)
    dm.prepare_data()
    cache = private_data_dir / "genlab_cache"
    assert sorted(p.name for p in cache.iterdir()) == ["mnist-28-test.pt", "mnist-28-train.pt"]
    monkeypatch.setattr(torchvision.datasets, "MNIST", lambda *a, **k: pytest.fail("decoded again"))
    x, _ = next(iter(mnist(private_data_dir).val_dataloader()))
    assert x.shape == (100, 1, 28, 28)


def test_truncated_cache_is_rebuilt_not_trusted(private_data_dir):
    mnist(private_data_dir).prepare_data()
    path = private_data_dir / "genlab_cache" / "mnist-28-train.pt"
    full = path.read_bytes()
    path.write_bytes(full[: len(full) // 2])  # as if a run was killed mid-write without atomic rename
    dm = mnist(private_data_dir)
    assert len(dm.labels("train")) == 60000
    assert path.stat().st_size == len(full)  # rewritten complete


def test_missing_with_download_off(tmp_path):
    with pytest.raises(DataError) as e:
        mnist(tmp_path, download=False).prepare_data()
    msg = str(e.value)
    assert "\n" not in msg
    assert f"MNIST not found under {tmp_path}/MNIST/raw" in msg and "dataset.download=false" in msg
    assert "train-images-idx3-ubyte.gz" in msg
    assert not (tmp_path / "genlab_cache").exists()


def test_missing_with_failed_download(tmp_path, offline):
    with pytest.raises(DataError) as e:
        mnist(tmp_path, name="fashion_mnist").prepare_data()
    msg = str(e.value)
    assert "\n" not in msg
    assert f"Fashion-MNIST not found under {tmp_path}/FashionMNIST/raw and download failed (offline?)" in msg
    assert not (tmp_path / "genlab_cache").exists()


def test_corrupt_file(private_data_dir, offline):
    # a damaged archive: MD5 mismatch -> torchvision tries to re-download -> offline
    (private_data_dir / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").write_bytes(b"not a gzip file")
    with pytest.raises(DataError, match="MNIST files under .*MNIST/raw are corrupt or incomplete"):
        mnist(private_data_dir).prepare_data()
    assert not (private_data_dir / "genlab_cache" / "mnist-28-train.pt").exists()


def test_truncated_extracted_file(private_data_dir):
    raw = private_data_dir / "MNIST" / "raw"
    with gzip.open(raw / "t10k-images-idx3-ubyte.gz") as f:
        (raw / "t10k-images-idx3-ubyte").write_bytes(f.read()[:5000])
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(raw / f"{name}.gz") as f:
            (raw / name).write_bytes(f.read())
    with pytest.raises(DataError, match="corrupt or incomplete") as e:
        mnist(private_data_dir, download=False).labels("test")
    assert "\n" not in str(e.value)


# ---- stacked MNIST ----------------------------------------------------------------------------
def test_stack_digits_by_hand():
    digits = torch.arange(5, dtype=torch.uint8).view(5, 1, 1, 1).expand(5, 1, 2, 2)
    labels = torch.tensor([7, 1, 2, 3, 9])
    images, codes = stack_digits(digits, labels, torch.tensor([[0, 1, 4], [3, 3, 2]]))
    assert images.shape == (2, 3, 2, 2)
    assert images[0, :, 0, 0].tolist() == [0, 1, 4] and images[1, :, 1, 1].tolist() == [3, 3, 2]
    assert codes.tolist() == [719, 332]


def test_stacked_mnist_real(real_data_dir):
    dm = build(
        StackedMNISTDataModule, data_dir=str(real_data_dir), seed=0, value_range=[0.0, 1.0], n_test=10000
    )
    assert dm.spec.shape == (3, 28, 28) and dm.spec.num_classes == 1000
    x = dm._split("test")["data"]
    codes = dm.labels("test")
    assert x.shape == (10000, 3, 28, 28) and codes.min() >= 0 and codes.max() <= 999
    assert len(codes.unique()) > 990  # 10k uniform draws over 1000 triples miss ~0.005% of them
    # each channel is a real MNIST test digit whose label is the matching decimal digit of the code
    ref = torchvision.datasets.MNIST(str(real_data_dir), train=False)
    flat = ref.data.view(len(ref.data), -1)
    for i in (0, 17, 9999):
        for c, digit in enumerate((codes[i] // 100, codes[i] // 10 % 10, codes[i] % 10)):
            match = (flat == x[i, c].reshape(1, -1)).all(1).nonzero().flatten()
            assert len(match) >= 1 and int(ref.targets[match[0]]) == int(digit)
    again = build(StackedMNISTDataModule, data_dir=str(real_data_dir), seed=0, n_test=10000)
    assert torch.equal(again._split("test")["data"], x)
    other = build(StackedMNISTDataModule, data_dir=str(real_data_dir), seed=1, n_test=10000)
    assert not torch.equal(other.labels("test"), codes)
    batch, y = next(iter(dm.train_dataloader()))
    assert batch.shape == (128, 3, 28, 28) and 0 <= batch.min() and batch.max() <= 1
    assert np.isin(y.numpy(), np.arange(1000)).all()


def test_stacked_mnist_missing(tmp_path):
    with pytest.raises(DataError, match="MNIST not found under"):
        build(StackedMNISTDataModule, data_dir=str(tmp_path), download=False).prepare_data()


def test_download_off_uses_the_original_archives_without_network(private_data_dir, offline):
    """Only the four verified .gz files, dataset.download=false: they are unpacked and used, no request made."""
    dm = mnist(private_data_dir, download=False)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape[1:] == (1, 28, 28) and y.min() >= 0

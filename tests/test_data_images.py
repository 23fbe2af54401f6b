"""CIFAR-10 and CelebA without network (failure messages; the pipeline on small fake trees in the
torchvision on-disk layout) and image folders on a temp tree of PNG/JPEG files."""

from __future__ import annotations

import pickle
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
import torchvision
from builders import build
from PIL import Image

from genlab.data.images import CelebADataModule, FolderDataModule, TorchvisionDataModule
from genlab.utils.errors import ConfigError, DataError


@pytest.fixture
def offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


# ---- CIFAR-10 ---------------------------------------------------------------------------------
def cifar_colour(i: int) -> tuple[int, int, int]:
    return (i * 11) % 256, (i * 37 + 50) % 256, (255 - i * 5) % 256


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch):
    """cifar-10-batches-py with 5 x 4 train and 6 test images, image i a solid colour."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()

    def batch(first: int, n: int) -> dict:
        data = np.stack(
            [np.repeat(np.array(cifar_colour(i), np.uint8), 1024) for i in range(first, first + n)]
        )
        return {"data": data, "labels": [i % 10 for i in range(first, first + n)]}

    for b in range(5):
        (folder / f"data_batch_{b + 1}").write_bytes(pickle.dumps(batch(4 * b, 4)))
    (folder / "test_batch").write_bytes(pickle.dumps(batch(100, 6)))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [str(i) for i in range(10)]}))
    # the fake files cannot match the real MD5s
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    return tmp_path


def cifar(data_dir, **over):
    cfg = dict(name="cifar10", data_dir=str(data_dir), batch_size=2, seed=0, value_range=[-1.0, 1.0])
    return build(TorchvisionDataModule, **{**cfg, **over})


def test_cifar_pipeline_on_fake_tree(fake_cifar):
    dm = cifar(fake_cifar)
    assert dm.spec.shape == (3, 32, 32) and TorchvisionDataModule.native_image_size(dm.config) == 32
    dm.setup()
    assert len(dm.labels("train")) == 20 and len(dm.labels("test")) == 6
    x = torch.cat([b[0] for b in dm.val_dataloader()])
    for k in range(6):
        expected = torch.tensor(cifar_colour(100 + k), dtype=torch.float32) / 255 * 2 - 1
        assert torch.allclose(x[k], expected.view(3, 1, 1).expand(3, 32, 32), atol=1e-6)
    assert dm.labels("test").tolist() == [i % 10 for i in range(100, 106)]


def test_cifar_resize_and_grayscale(fake_cifar):
    dm = cifar(fake_cifar, image_size=64, channels=1, value_range=[0.0, 1.0])
    x, _ = next(iter(dm.val_dataloader()))
    assert x.shape == (2, 1, 64, 64)
    r, g, b = cifar_colour(100)
    luma = (0.2989 * r + 0.587 * g + 0.114 * b) / 255  # ITU-R 601 weights, as PIL's "L" mode
    assert torch.allclose(x[0], torch.full_like(x[0], luma), atol=1.5 / 255)


def test_cifar_offline_failure(tmp_path, offline):
    with pytest.raises(DataError) as e:
        cifar(tmp_path).prepare_data()
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"CIFAR-10 not found under {tmp_path} and download failed (offline?)")
    assert "cifar-10-python.tar.gz" in msg
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_cifar_download_off(tmp_path):
    with pytest.raises(DataError, match="CIFAR-10 not found under .* and dataset.download=false"):
        cifar(tmp_path, download=False).prepare_data()


def test_cifar_corrupt_batch(fake_cifar):
    (fake_cifar / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"garbage")
    with pytest.raises(DataError, match="CIFAR-10 files under .* are corrupt or incomplete"):
        cifar(fake_cifar, download=False).prepare_data()
    assert not (fake_cifar / "genlab_cache" / "cifar10-32-train.pt").exists()


# ---- CelebA -----------------------------------------------------------------------------------
BLUE, RED = (0, 0, 255), (255, 0, 0)


def lines(rows) -> str:
    return "\n".join(rows) + "\n"


@pytest.fixture
def fake_celeba(tmp_path, monkeypatch):
    """celeba/ with 7 aligned-face sized images (178 x 218): blue square centre, red top/bottom bands."""
    root = tmp_path / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    names = [f"{i:06d}.png" for i in range(1, 8)]
    partition = [0, 0, 0, 1, 1, 2, 2]  # torchvision fails on a partition of exactly one image
    for name in names:
        img = np.zeros((218, 178, 3), np.uint8)
        img[:] = RED
        img[20:198] = BLUE  # exactly the 178 x 178 centre crop
        Image.fromarray(img).save(root / "img_align_celeba" / name)
    (root / "list_eval_partition.txt").write_text(
        lines(f"{n} {p}" for n, p in zip(names, partition, strict=True))
    )
    (root / "identity_CelebA.txt").write_text(lines(f"{n} 1" for n in names))
    (root / "list_bbox_celeba.txt").write_text(
        lines(["7", "image_id x_1 y_1 width height", *(f"{n} 0 0 9 9" for n in names)])
    )
    marks = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
    (root / "list_landmarks_align_celeba.txt").write_text(
        lines(["7", marks, *(f"{n}" + " 1" * 10 for n in names)])
    )
    (root / "list_attr_celeba.txt").write_text(lines(["7", "Smiling Young", *(f"{n} 1 -1" for n in names)]))
    monkeypatch.setattr(torchvision.datasets.celeba, "check_integrity", lambda *a, **k: True)
    return tmp_path


def test_celeba_pipeline_on_fake_tree(fake_celeba):
    dm = build(
        CelebADataModule, data_dir=str(fake_celeba), batch_size=2, num_workers=0, value_range=[-1.0, 1.0]
    )
    assert dm.spec.shape == (3, 64, 64) and CelebADataModule.native_image_size(dm.config) == 64
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 3, 64, 64) and y.tolist() == [-1, -1]
    blue = torch.tensor([-1.0, -1.0, 1.0]).view(3, 1, 1)
    assert torch.allclose(x, blue.expand_as(x[0]).expand_as(x), atol=1e-6)  # the red bands were cropped away
    assert len(dm._dataset("train")) == 3 and len(dm._dataset("test")) == 2
    dm_valid = build(
        CelebADataModule, data_dir=str(fake_celeba), val_split="valid", image_size=32, channels=1
    )
    assert len(dm_valid._dataset("test")) == 2
    assert dm_valid.real_samples(4).shape == (4, 1, 32, 32)


def test_celeba_missing(tmp_path, offline):
    with pytest.raises(DataError) as e:
        build(CelebADataModule, data_dir=str(tmp_path)).prepare_data()
    msg = str(e.value)
    assert (
        "\n" not in msg and f"CelebA not found under {tmp_path}/celeba" in msg and "img_align_celeba" in msg
    )


def test_celeba_broken_image(fake_celeba):
    (fake_celeba / "celeba" / "img_align_celeba" / "000002.png").write_bytes(b"nope")
    dm = build(CelebADataModule, data_dir=str(fake_celeba), batch_size=3, num_workers=0)
    with pytest.raises(DataError, match="cannot read an image under"):
        list(dm.train_dataloader())


# ---- folder -----------------------------------------------------------------------------------
def solid(path, colour, size=(40, 30), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "images"
    solid(root / "a" / "red.png", RED)
    solid(root / "b" / "c" / "blue.png", BLUE, size=(30, 40))
    solid(root / "gray.png", 128, mode="L")
    (root / "notes.txt").write_text("not an image")
    return root


def folder(root, **over):
    cfg = dict(
        path=str(root), image_size=16, batch_size=3, num_workers=0, val_fraction=0.0, value_range=[0.0, 1.0]
    )
    return build(FolderDataModule, **{**cfg, **over})


def test_folder_rgb(tree):
    dm = folder(tree)
    assert dm.spec.shape == (3, 16, 16)
    files = dm.files["train"]
    assert [p.name for p in files] == [
        "red.png",
        "blue.png",
        "gray.png",
    ]  # sorted paths, recursive, images only
    x, y = next(iter(dm.val_dataloader()))
    assert x.shape == (3, 3, 16, 16) and y.tolist() == [-1, -1, -1]
    assert torch.allclose(x[0], torch.tensor([1.0, 0, 0]).view(3, 1, 1).expand(3, 16, 16))
    assert torch.allclose(x[1], torch.tensor([0, 0, 1.0]).view(3, 1, 1).expand(3, 16, 16))
    assert torch.allclose(x[2], torch.full((3, 16, 16), 128 / 255))


def test_folder_grayscale(tree):
    dm = folder(tree, channels=1, value_range=[-1.0, 1.0])
    x, _ = next(iter(dm.val_dataloader()))
    assert x.shape == (3, 1, 16, 16)
    luma_red = round(0.299 * 255) / 255 * 2 - 1  # PIL "L" conversion of pure red
    assert torch.allclose(x[0], torch.full_like(x[0], luma_red), atol=1.5 / 255 * 2)


def test_folder_split_is_seeded_and_disjoint(tmp_path):
    for i in range(20):
        solid(tmp_path / f"{i:02d}.png", (i, i, i), size=(8, 8))
    a, b = folder(tmp_path, val_fraction=0.25, seed=0), folder(tmp_path, val_fraction=0.25, seed=0)
    c = folder(tmp_path, val_fraction=0.25, seed=1)
    assert len(a.files["test"]) == 5 and len(a.files["train"]) == 15
    assert set(a.files["train"]).isdisjoint(a.files["test"])
    assert a.files == b.files and a.files["test"] != c.files["test"]


def test_folder_with_workers(tree):
    dm = folder(tree, num_workers=1, batch_size=1)
    batches = list(dm.train_dataloader())
    assert len(batches) == 3 and all(b[0].shape == (1, 3, 16, 16) for b in batches)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "no images found under"),
        (lambda p: p.write_text("x"), "is not a directory"),
    ],
)
def test_folder_errors(tmp_path, make, message):
    path = tmp_path / "data"
    make(path)
    with pytest.raises(DataError, match=message) as e:
        folder(path).prepare_data()
    assert "\n" not in str(e.value)


def test_folder_unreadable_image(tree):
    (tree / "a" / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError, match=r"cannot read image .*broken.png"):
        folder(tree).prepare_data()


def test_folder_path_required():
    with pytest.raises(ConfigError, match="dataset.path is not set"):
        build(FolderDataModule)

"""The shared datamodule machinery: configs, value-range transform, DDP sharding and global batch size,
device placement, the atomic cache, and a real Lightning fit through a datamodule."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from builders import build
from omegaconf import OmegaConf
from trainers import bare_trainer

from genlab.config.schema import build_typed
from genlab.data import DATASETS, cache
from genlab.data.datamodule import DEFAULT_VALUE_RANGE, ToValueRange, canonical_split, split_seed
from genlab.data.synthetic import GaussianMixtureDataModule, ShapesDataModule
from genlab.utils.errors import ConfigError

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs" / "dataset").glob("*.yaml"))
EXPECTED = {
    "mnist",
    "fashion_mnist",
    "cifar10",
    "celeba",
    "folder",
    "shapes",
    "ring",
    "grid",
    "stacked_mnist",
}


def compose(path: Path, data_dir: str = "data") -> OmegaConf:
    root = OmegaConf.create({"paths": {"data_dir": data_dir}, "seed": 7, "dataset": OmegaConf.load(path)})
    return root.dataset


def test_every_dataset_has_a_config():
    assert {p.stem for p in CONFIGS} == EXPECTED


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_yaml_keys_are_typed_config_fields(path):
    """Each yaml's `name` is a registry key, and its keys build that dataset's typed config."""
    cfg = OmegaConf.to_container(compose(path), resolve=True)
    if path.stem == "folder":
        cfg["path"] = "/somewhere"
    cls = DATASETS[cfg["name"]]
    typed = build_typed(cls.config_class, cfg, "dataset")
    assert typed.name == path.stem and typed.seed == 7
    native = cls.native_image_size(typed)
    assert native is None if path.stem in ("ring", "grid") else native > 0


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_spec_right_after_construction(path, tmp_path):
    cfg = OmegaConf.to_container(compose(path, str(tmp_path)), resolve=True)
    if path.stem == "folder":
        cfg["path"] = str(tmp_path)
    cls = DATASETS[cfg["name"]]
    dm = cls(build_typed(cls.config_class, cfg, "dataset"))
    spec = dm.spec
    assert spec.name == path.stem
    if path.stem in ("ring", "grid"):
        assert spec.shape == (2,) and spec.value_range is None and dm.modes is not None
    else:
        native = type(dm).native_image_size(dm.config)
        assert (
            spec.shape[1:] == (native, native)
            and spec.value_range == DEFAULT_VALUE_RANGE
            and dm.modes is None
        )
    assert list(tmp_path.iterdir()) == []  # nothing is read or written before prepare_data/setup


@pytest.mark.parametrize(
    "over, message",
    [
        ({"batch_size": 0}, "dataset.batch_size=0 must be a finite number >= 1"),
        ({"on_device": "gpu"}, "dataset.on_device='gpu' is not known; allowed: auto, true, false"),
        ({"value_range": [1, -1]}, "dataset.value_range"),
        ({"channels": 2}, "dataset.channels=2"),
        ({"image_size": 2}, "dataset.image_size=2"),
        ({"num_workers": -1}, "dataset.num_workers"),
    ],
)
def test_bad_values_are_one_line_config_errors(over, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")) as e:
        build(ShapesDataModule, **over)
    assert "\n" not in str(e.value)


def test_on_device_accepts_yaml_booleans():
    assert build(ShapesDataModule, on_device=True).config.on_device == "true"
    assert build(ShapesDataModule, on_device="False").config.on_device == "false"


def test_unknown_split():
    assert canonical_split("val") == "test"
    with pytest.raises(ConfigError, match="split='dev' is not known"):
        canonical_split("dev")
    assert len({split_seed(s, p) for s in range(5) for p in ("train", "test")}) == 10


def test_to_value_range_by_hand():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8)
    assert torch.allclose(ToValueRange((-1.0, 1.0))(x), torch.tensor([-1.0, 51 / 255 * 2 - 1, 1.0]))
    assert torch.allclose(ToValueRange((0.0, 1.0))(x), torch.tensor([0.0, 0.2, 1.0]))
    floats = torch.randn(3)
    assert ToValueRange(None)(floats) is floats


# ---- trainer-derived placement, DDP sharding, global batch size ---------------------------------
def attach(dm, rank=0, world_size=1, device="cpu"):
    dm.trainer = SimpleNamespace(
        strategy=SimpleNamespace(root_device=torch.device(device)), global_rank=rank, world_size=world_size
    )
    dm.setup("fit")
    return dm


def ring(**over):
    return build(
        GaussianMixtureDataModule,
        **{"name": "ring", "n_train": 1000, "n_test": 100, "batch_size": 100, **over},
    )


def test_ddp_ranks_get_disjoint_shards_of_the_global_batch():
    r0, r1 = attach(ring(), 0, 2), attach(ring(), 1, 2)
    b0, b1 = list(r0.train_dataloader()), list(r1.train_dataloader())
    assert len(b0) == len(b1) == 10 and b0[0][0].shape == (50, 2)  # global 100 = 2 x 50
    p0, p1 = torch.cat([b[0] for b in b0]), torch.cat([b[0] for b in b1])
    rows0, rows1 = {tuple(r) for r in p0.tolist()}, {tuple(r) for r in p1.tolist()}
    assert rows0.isdisjoint(rows1) and len(rows0 | rows1) == 1000
    v0, v1 = list(r0.val_dataloader()), list(r1.val_dataloader())
    assert sum(len(b[1]) for b in v0 + v1) == 100


def test_global_batch_not_divisible_by_world_size():
    with pytest.raises(
        ConfigError,
        match=r"dataset.batch_size=100 is global and must divide evenly over the 3 processes.*102",
    ):
        attach(ring(), 0, 3)


def test_on_device_true_places_the_split_on_the_trainer_device():
    # the meta device stands in for an accelerator: placement logic without a GPU
    dm = attach(ring(on_device="true"), device="meta")
    assert dm._split("train")["data"].device.type == "meta"
    assert attach(ring(on_device="false"), device="meta")._split("train")["data"].device.type == "cpu"
    assert attach(ring(on_device="auto"), device="meta")._split("train")["data"].device.type == "cpu"
    early = ring(on_device="true")
    early.labels("train")  # loaded on the cpu before the trainer is attached ...
    assert attach(early, device="meta")._split("train")["labels"].device.type == "meta"  # ... then moved


# ---- atomic cache ---------------------------------------------------------------------------------
def tensors(n=4):
    return {"data": torch.arange(n * 4, dtype=torch.uint8).view(n, 1, 2, 2), "labels": torch.arange(n)}


def test_cache_roundtrip_and_rebuild_on_meta_or_shape_change(tmp_path):
    path = cache.cache_path(tmp_path, "toy", 2, "train")
    assert path == tmp_path / "genlab_cache" / "toy-2-train.pt"
    calls = []

    def build():
        calls.append(1)
        return tensors()

    first = cache.load_or_build(path, build, {"k": 1}, (1, 2, 2))
    again = cache.load_or_build(path, build, {"k": 1}, (1, 2, 2))
    assert len(calls) == 1 and torch.equal(first["data"], again["data"])
    cache.load_or_build(path, build, {"k": 2}, (1, 2, 2))  # other recipe
    cache.load_or_build(path, build, {"k": 2}, (3, 2, 2))  # wrong sample shape on disk
    assert len(calls) == 3


def test_killed_write_leaves_no_file(tmp_path, monkeypatch):
    path = cache.cache_path(tmp_path, "toy", 2, "train")
    real_save = torch.save

    def dies_midway(obj, f):
        real_save(obj, f)
        f.truncate(10)
        raise KeyboardInterrupt  # the run is killed while writing

    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        cache.load_or_build(path, tensors, {}, (1, 2, 2))
    assert list(path.parent.iterdir()) == []  # neither the cache nor a temp file


def test_garbage_cache_file_is_rebuilt(tmp_path):
    path = cache.cache_path(tmp_path, "toy", 2, "train")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00" * 100)
    out = cache.load_or_build(path, tensors, {}, (1, 2, 2))
    assert torch.equal(out["labels"], torch.arange(4))
    assert torch.load(path, weights_only=True)["meta"]["version"] == cache.CACHE_VERSION


def test_unwritable_data_dir_only_costs_the_cache(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where the cache directory should go
    out = cache.load_or_build(blocker / "genlab_cache" / "a.pt", tensors, {}, (1, 2, 2))
    assert len(out["data"]) == 4


# ---- a real Lightning fit ----------------------------------------------------------------------------
class MeanModel(pl.LightningModule):
    """Learns the data mean; asserts the batches it gets are what the datamodule promises."""

    def __init__(self, shape, value_range):
        super().__init__()
        self.mean = torch.nn.Parameter(torch.zeros(shape))
        self.value_range = value_range
        self.seen = 0

    def training_step(self, batch, _):
        x, y = batch
        assert x.dtype == torch.float32 and y.dtype == torch.long and x.shape[1:] == self.mean.shape
        if self.value_range is not None:
            assert x.min() >= self.value_range[0] and x.max() <= self.value_range[1]
        self.seen += len(x)
        return ((x - self.mean) ** 2).mean()

    def validation_step(self, batch, _):
        self.log("val/loss", ((batch[0] - self.mean) ** 2).mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.parametrize("dataset", ["shapes", "grid"])
def test_lightning_fit(tmp_path, dataset):
    if dataset == "shapes":
        dm = build(
            ShapesDataModule,
            data_dir=str(tmp_path),
            n_train=256,
            n_test=64,
            batch_size=32,
            value_range=[-1, 1],
        )
    else:
        dm = build(GaussianMixtureDataModule, name="grid", n_train=256, n_test=64, batch_size=32)
    model = MeanModel(dm.spec.shape, dm.spec.value_range)
    trainer = bare_trainer(5, val_check_interval=5, limit_val_batches=2, default_root_dir=tmp_path)
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 5 and model.seen == 5 * 32
    assert torch.isfinite(trainer.callback_metrics["val/loss"])

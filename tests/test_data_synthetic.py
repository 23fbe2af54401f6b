"""Built-in datasets: procedural shapes (geometry checked against hand-computed areas and moments)
and the ring/grid Gaussian mixtures (mode positions from the literature, empirical std)."""

from __future__ import annotations

import math
import time

import pytest
import torch
from builders import build

from genlab.data.synthetic import (
    SHAPES,
    GaussianMixtureDataModule,
    ShapesDataModule,
    grid_modes,
    render_shapes,
    ring_modes,
    sample_mixture,
    sample_shape_factors,
)
from genlab.utils.errors import ConfigError

SIZE = 64


def one_shape(
    kind: str, scale: float = 0.5, rotation: float = 0.0, x: float = 0.0, y: float = 0.0
) -> torch.Tensor:
    """Render one shape with given factors; returns coverage in [0, 1] as (SIZE, SIZE)."""
    factors = {
        "shape": torch.tensor([SHAPES.index(kind)]),
        "scale": torch.tensor([scale]),
        "rotation": torch.tensor([rotation]),
        "pos_x": torch.tensor([x]),
        "pos_y": torch.tensor([y]),
    }
    return render_shapes(factors, SIZE)[0, 0].double() / 255


def moments(img: torch.Tensor) -> tuple[float, float, float, float]:
    """Mass, centroid (x, y) in pixels and principal-axis angle (x right, y down)."""
    ys, xs = torch.meshgrid(torch.arange(SIZE) + 0.5, torch.arange(SIZE) + 0.5, indexing="ij")
    m = img.sum()
    cx, cy = (img * xs).sum() / m, (img * ys).sum() / m
    cxx = (img * (xs - cx) ** 2).sum() / m
    cyy = (img * (ys - cy) ** 2).sum() / m
    cxy = (img * (xs - cx) * (ys - cy)).sum() / m
    return float(m), float(cx), float(cy), 0.5 * math.atan2(2 * float(cxy), float(cxx - cyy))


# circumradius R = scale * SIZE / 2 pixels; areas of the canonical shapes scaled by R
@pytest.mark.parametrize(
    "kind, area",
    [
        ("square", lambda r: (2 * 0.7 * r) ** 2),
        ("ellipse", lambda r: math.pi * r * (0.5 * r)),
        ("triangle", lambda r: 3 * math.sqrt(3) / 4 * r**2),
    ],
)
@pytest.mark.parametrize("rotation", [0.0, 0.7, 2.0])
def test_rendered_area_matches_geometry(kind, area, rotation):
    scale = 0.5
    img = one_shape(kind, scale=scale, rotation=rotation)
    expected = area(scale * SIZE / 2)
    assert img.sum().item() == pytest.approx(expected, rel=0.03)
    assert img[SIZE // 2, SIZE // 2] == 1.0  # centre inside
    assert img[0, 0] == 0.0 and img[-1, -1] == 0.0  # corners outside


def test_position_and_rotation_factors_move_the_shape():
    x, y = 0.3, -0.2
    mass, cx, cy, _ = moments(one_shape("square", scale=0.4, x=x, y=y))
    assert cx == pytest.approx((x + 1) / 2 * SIZE, abs=0.3)
    assert cy == pytest.approx((y + 1) / 2 * SIZE, abs=0.3)
    for theta in (0.0, 0.5, 1.2, -0.9):
        *_, angle = moments(one_shape("ellipse", scale=0.6, rotation=theta))
        # the ellipse's major axis is its local x axis: the principal angle equals theta (mod pi)
        diff = (angle - theta + math.pi / 2) % math.pi - math.pi / 2
        assert abs(diff) < 0.03


def test_factor_ranges():
    g = torch.Generator().manual_seed(0)
    f = sample_shape_factors(5000, g, num_shapes=3, scale=(0.35, 0.7), color=True)
    assert set(f["shape"].unique().tolist()) == {0, 1, 2}
    assert f["scale"].min() >= 0.35 and f["scale"].max() <= 0.7
    assert f["rotation"].min() >= 0 and f["rotation"].max() < 2 * math.pi
    # the circumscribed circle stays inside the image
    assert (f["pos_x"].abs() + f["scale"] <= 1 + 1e-6).all()
    assert (f["pos_y"].abs() + f["scale"] <= 1 + 1e-6).all()
    assert f["color"].min() >= 0.25 and f["color"].max() <= 1


def test_rotation_range_in_degrees():
    g = torch.Generator().manual_seed(0)
    f = sample_shape_factors(5000, g, rotation=(-15.0, 15.0))
    assert f["rotation"].min() >= math.radians(-15) and f["rotation"].max() <= math.radians(15)
    assert f["rotation"].max() - f["rotation"].min() > math.radians(29)  # spans the range


def test_upright_shapes_dataset(tmp_path):
    """rotation_min = rotation_max = 0: every ellipse lies along the x axis."""
    dm = shapes_dm(
        tmp_path, shapes=["ellipse"], rotation_min=0.0, rotation_max=0.0, scale_min=0.6, image_size=SIZE
    )
    dm.setup()
    images = dm.real_samples(20, split="train")
    for img in images[:, 0]:
        *_, angle = moments((img.double() + 1) / 2)
        assert abs(angle) < 0.05
    assert (dm.factors["rotation"] == 0).all()


def test_20k_images_render_in_seconds():
    g = torch.Generator().manual_seed(0)
    factors = sample_shape_factors(20000, g)
    start = time.perf_counter()
    imgs = render_shapes(factors, 32)
    assert time.perf_counter() - start < 10  # ~0.3 s on an idle 2-core CPU
    assert imgs.shape == (20000, 1, 32, 32) and imgs.dtype == torch.uint8


def shapes_dm(tmp_path, **over):
    cfg = dict(data_dir=str(tmp_path), n_train=600, n_test=100, batch_size=50, seed=3, value_range=[-1, 1])
    return build(ShapesDataModule, **{**cfg, **over})


def test_shapes_datamodule_deterministic_from_seed(tmp_path):
    a = shapes_dm(tmp_path / "a")
    b = shapes_dm(tmp_path / "b")
    c = shapes_dm(tmp_path / "c", seed=4)
    assert torch.equal(
        a.real_samples(600, "train", torch.Generator().manual_seed(0)),
        b.real_samples(600, "train", torch.Generator().manual_seed(0)),
    )
    assert torch.equal(a.factors["rotation"], b.factors["rotation"])
    assert not torch.equal(a.factors["rotation"], c.factors["rotation"])
    # train and test are different draws
    assert not torch.equal(a.factors_of("test")["rotation"][:100], a.factors["rotation"][:100])


def test_shapes_batches_labels_and_range(tmp_path):
    dm = shapes_dm(tmp_path, shapes=["triangle", "square"], value_range=[0, 1])
    assert dm.spec.shape == (1, 32, 32) and dm.spec.num_classes == 2
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (50, 1, 32, 32) and x.dtype == torch.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert set(y.tolist()) <= {0, 1}
    assert torch.equal(dm.labels("train"), dm.factors["shape"])
    # label 0 means triangle: area of a label-0 image matches the triangle formula, not the square one
    i = int((dm.factors["shape"] == 0).nonzero()[0])
    img = dm.real_samples(600, "train", None)  # random order: use the raw split instead
    data = dm._split("train")["data"][i, 0].double() / 255
    r = float(dm.factors["scale"][i]) * 32 / 2
    assert data.sum().item() == pytest.approx(3 * math.sqrt(3) / 4 * r**2, rel=0.08)
    assert img.shape == (600, 1, 32, 32)


def test_shapes_rgb_has_colour_factor(tmp_path):
    dm = shapes_dm(tmp_path, channels=3, image_size=16)
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (50, 3, 16, 16)
    assert dm.factors["color"].shape == (600, 3)


def test_shapes_cache_is_reused(tmp_path, monkeypatch):
    shapes_dm(tmp_path).setup()
    import genlab.data.synthetic as synthetic

    monkeypatch.setattr(synthetic, "render_shapes", lambda *a, **k: pytest.fail("re-rendered despite cache"))
    dm = shapes_dm(tmp_path)
    dm.setup()
    assert len(dm.labels("train")) == 600


def test_shapes_config_errors():
    with pytest.raises(ConfigError, match="dataset.shapes"):
        build(ShapesDataModule, shapes=["circle"])
    with pytest.raises(ConfigError, match="scale_min"):
        build(ShapesDataModule, scale_min=0.8, scale_max=0.5)
    with pytest.raises(ConfigError, match="rotation_min"):
        build(ShapesDataModule, rotation_min=30.0, rotation_max=10.0)


# ---- ring / grid ------------------------------------------------------------------------------
def test_ring_modes_positions():
    modes = ring_modes()
    assert modes.shape == (8, 2)
    s = math.sqrt(2)
    expected = torch.tensor([[2, 0], [s, s], [0, 2], [-s, s], [-2, 0], [-s, -s], [0, -2], [s, -s]])
    assert torch.allclose(modes, expected.float(), atol=1e-6)


def test_grid_modes_positions():
    modes = grid_modes()
    assert modes.shape == (25, 2)
    expected = {(float(i), float(j)) for i in (-4, -2, 0, 2, 4) for j in (-4, -2, 0, 2, 4)}
    assert {tuple(p) for p in modes.tolist()} == expected


@pytest.mark.parametrize("name, k, std", [("ring", 8, 0.02), ("grid", 25, 0.05)])
def test_mixture_datamodule(name, k, std):
    dm = build(GaussianMixtureDataModule, name=name, n_train=50000, n_test=1000, seed=0, batch_size=256)
    assert dm.spec.shape == (2,) and dm.spec.value_range is None and dm.spec.num_classes == k
    assert dm.mode_std == std and dm.modes.shape == (k, 2)
    assert GaussianMixtureDataModule.native_image_size(dm.config) is None
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (256, 2) and x.dtype == torch.float32 and y.dtype == torch.long
    data, labels = dm._split("train")["data"], dm.labels("train")
    resid = data - dm.modes[labels]
    assert resid.std().item() == pytest.approx(std, rel=0.03)
    assert resid.mean(0).abs().max() < 3 * std / math.sqrt(len(data)) * 3
    # every point's nearest mode is its label (modes are > 40 std apart)
    assert torch.equal(torch.cdist(data, dm.modes).argmin(1), labels)
    counts = torch.bincount(labels, minlength=k).double()
    assert (counts / counts.mean() - 1).abs().max() < 0.1


def test_mixture_deterministic_from_seed():
    a = build(GaussianMixtureDataModule, name="ring", n_train=1000, n_test=100, seed=5)
    b = build(GaussianMixtureDataModule, name="ring", n_train=1000, n_test=100, seed=5)
    c = build(GaussianMixtureDataModule, name="ring", n_train=1000, n_test=100, seed=6)
    assert torch.equal(a._split("train")["data"], b._split("train")["data"])
    assert not torch.equal(a._split("train")["data"], c._split("train")["data"])
    assert not torch.equal(a._split("train")["data"][:100], a._split("test")["data"])
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(a.real_samples(500, generator=g1), a.real_samples(500, generator=g2))


def test_sample_mixture_matches_a_torch_distributions_mixture():
    modes, std = grid_modes(), 0.05
    x, _ = sample_mixture(modes, std, 20000, torch.Generator().manual_seed(0))
    mix = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(torch.ones(len(modes))),
        torch.distributions.Independent(torch.distributions.Normal(modes, std), 1),
    )
    ref = mix.sample((20000,))
    # same mean and per-axis variance (dominated by the mode spread: 8 for the 5x5 grid of spacing 2)
    assert torch.allclose(x.mean(0), ref.mean(0), atol=0.1)
    assert torch.allclose(x.var(0), ref.var(0), rtol=0.05)
    assert x.var(0).mean().item() == pytest.approx(8 + std**2, rel=0.05)


def test_mixture_config_errors():
    with pytest.raises(ConfigError, match="dataset.name='spiral' is not known"):
        build(GaussianMixtureDataModule, name="spiral")
    with pytest.raises(ConfigError, match="dataset.std"):
        build(GaussianMixtureDataModule, name="grid", std=-1.0)

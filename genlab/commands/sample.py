"""``genlab sample``: write samples of a trained checkpoint to a PNG grid or a .npy array.

A class-conditional checkpoint draws ``class=7`` (n samples of one class), ``classes=[0,1,2]`` (a class grid: one
row per class, n // len(classes) samples each, the same latents in every row) or, by default, a class grid of
every class; the rows of a ``.npy`` class grid follow each other (class 0's samples first).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torchvision.utils import save_image

from genlab.checkpoint import LoadedRun, load_run, pick_device
from genlab.config.schema import (
    check_at_least,
    check_choice,
    check_seed,
    command_config,
    is_number,
    require,
    set_field,
)
from genlab.models.capabilities import Reconstructor, Sampler
from genlab.utils.atomic import check_writable, write_atomic
from genlab.utils.errors import ConfigError
from genlab.utils.progress import Phases, Progress
from genlab.utils.resources import require_memory
from genlab.utils.threads import use_threads

log = logging.getLogger("genlab")
MODES = ("prior", "reconstruct", "interpolate")
INTERPOLATION_STEPS = 10


@dataclass(frozen=True)
class SampleConfig:
    """The keys of ``configs/sample.yaml``."""

    # a checkpoint written by genlab train
    ckpt: str | None = None
    # number of samples
    n: int = 64
    # .png: a grid; .npy: the raw array in [0, 1] (N, C, H, W), or (N, 2) for 2D data; null: the run's
    # samples/ folder, <run dir>/samples/<ckpt>-<mode>-n<n>-seed<seed>.png (.npy for 2D data)
    out: str | None = None
    # same seed, same samples
    seed: int = 0
    # prior | reconstruct (VAE) | interpolate
    mode: str = "prior"
    # images per grid row (null: sqrt(n); class grids: the samples per class)
    nrow: int | None = None
    # reconstruct mode: the split of the run's dataset to reconstruct
    split: str = "test"
    # reconstruct mode: where the run's dataset is read from (null: $GENLAB_DATA_DIR or data/), never the
    # directory stored in the checkpoint
    data_dir: str | None = None
    # auto | cpu | cuda | cuda:N
    device: str = "auto"
    # CPU threads for torch (null: the cores free when the command starts)
    threads: int | None = None
    # conditional checkpoints: draw n samples of this class only (e.g. class=7)
    class_: Any = None
    # conditional checkpoints: a class grid, one row per class, n // len(classes) samples each (e.g.
    # classes=[0,1,2]); null: every class
    classes: Any = None
    task: str = "sample"

    def __post_init__(self) -> None:
        require(bool(self.ckpt), "ckpt is required: genlab sample ckpt=<run dir>/checkpoints/last.ckpt")
        check_at_least("n", self.n, 1, 64)
        require(
            self.out is None or Path(self.out).suffix in (".png", ".npy"),
            f"out={self.out}: the file must end in .png (grid) or .npy (raw array)",
        )
        check_seed("seed", self.seed, 0)
        if self.threads is not None:
            check_at_least("threads", self.threads, 1, 1)
        check_choice("mode", self.mode, MODES)
        if self.nrow is not None:
            check_at_least("nrow", self.nrow, 1, 8)
        check_choice("split", self.split, ("train", "test", "val"))
        if self.class_ is not None:
            require(
                is_class(self.class_), f"class={self.class_!r} must be a class number >= 0 (e.g. class=7)"
            )
        if is_class(self.classes):
            set_field(self, "classes", [self.classes])
        if self.classes is not None:
            require(
                isinstance(self.classes, list) and bool(self.classes) and all(map(is_class, self.classes)),
                f"classes={self.classes!r} must be a non-empty list of class numbers >= 0 (e.g. classes=[0,1,2])",
            )
        require(
            self.class_ is None or self.classes is None,
            "set class or classes, not both: class=7 draws one class, classes=[0,1,2] a grid row per class",
        )
        require(
            self.mode != "reconstruct" or (self.class_ is None and self.classes is None),
            "mode=reconstruct keeps each image's own class: drop class/classes (they choose what to generate)",
        )

    @property
    def class_key(self) -> str:
        """How the user asked for classes, for messages: ``class=7`` or ``classes=[0, 1]`` ('' when not)."""
        if self.class_ is not None:
            return f"class={self.class_}"
        return f"classes={self.classes}" if self.classes is not None else ""


def is_class(value: Any) -> bool:
    return is_number(value) and isinstance(value, int) and value >= 0


def write_output(x: torch.Tensor, out: Path, nrow: int) -> None:
    if out.suffix == ".npy":
        write = lambda f: np.save(f, x.numpy())  # noqa: E731
    else:
        write = lambda f: save_image(x, f, format="png", nrow=nrow, padding=2, pad_value=1.0)  # noqa: E731
    try:
        write_atomic(out, write)
    except OSError as e:
        raise ConfigError(
            f"out={out} cannot be written ({e.strerror or e}); choose another out=<file>"
        ) from e


def draw(loaded: LoadedRun, cfg: SampleConfig, generator: torch.Generator) -> tuple[torch.Tensor, int]:
    """Samples in [0, 1] (or raw 2D points) for the requested mode, plus the images per grid row."""
    model, n = loaded.model, cfg.n
    nrow = cfg.nrow or max(1, int(math.sqrt(n)))
    if not isinstance(model, Sampler):
        raise ConfigError(
            f"ckpt={cfg.ckpt} is a {model.family}, not a generative model: pass a GAN or VAE checkpoint"
        )
    classes = requested_classes(model, cfg)
    if cfg.mode == "prior" and model.num_classes is not None and cfg.class_ is None:
        classes = classes or list(range(model.num_classes))
        per_class = max(1, n // len(classes))  # a class grid: one row per class
        with Phases("sample", announce=False).phase("sampling a class grid"):
            x = model.class_grid(classes, per_class, generator=generator)
        return x, cfg.nrow or per_class
    if cfg.mode == "prior":

        def one_chunk(k: int) -> torch.Tensor:
            labels = None if classes is None else torch.full((k,), classes[0], dtype=torch.long)
            return model.sample(k, generator=generator, labels=labels)

        with Phases("sample", announce=False).phase("sampling", n, "samples") as progress:
            x = in_chunks(one_chunk, n, progress=progress)
        return model.to_unit(x), nrow
    if (
        cfg.mode == "interpolate"
    ):  # rows of 10 steps: n is rounded down to a multiple of 10 (at least one row)
        rows = max(1, n // INTERPOLATION_STEPS)
        z = model.prior_latents(2 * rows, generator)
        labels = (
            None if classes is None else torch.tensor(classes).repeat(rows)[:rows]
        )  # row i: class i mod len
        grid = model.interpolation_grid(rows=rows, steps=INTERPOLATION_STEPS, z=z, labels=labels)
        return grid, INTERPOLATION_STEPS
    if not isinstance(model, Reconstructor):
        raise ConfigError(
            f"mode=reconstruct needs an autoencoder; ckpt={cfg.ckpt} is a {model.family}: use mode=prior"
        )
    record = loaded.record
    datamodule = record.dataset_class(record.dataset, record.data)
    real, labels = datamodule.real_labelled(n, split=cfg.split, generator=generator)
    real = real.to(model.device)
    recon = model.reconstruct(real, labels if model.num_classes is not None else None)
    pairs = torch.stack([real, recon], dim=1).flatten(0, 1)  # input, reconstruction, input, ...
    return model.to_unit(pairs), 2 * max(1, nrow // 2)


def requested_classes(model: Sampler, cfg: SampleConfig) -> list[int] | None:
    """The classes asked for with ``class``/``classes``, checked against the checkpoint (None: not asked)."""
    wanted = [cfg.class_] if cfg.class_ is not None else cfg.classes
    if wanted is None:
        return None
    k = model.num_classes
    if k is None:
        raise ConfigError(
            f"{cfg.class_key} needs a class-conditional checkpoint (trained with model.conditional=true); "
            f"ckpt={cfg.ckpt} is an unconditional {model.family}: drop {cfg.class_key.split('=')[0]}"
        )
    bad = [c for c in wanted if c >= k]
    if bad:
        raise ConfigError(
            f"{cfg.class_key}: class {bad[0]} is not a class of {model.spec.name}, whose classes are 0..{k - 1}"
        )
    return list(wanted)


@torch.no_grad()
def in_chunks(fn, n: int, chunk: int = 1000, progress: Progress | None = None) -> torch.Tensor:
    """``fn(k)`` for k <= chunk at a time, concatenated on the CPU (large n without running out of memory)."""
    parts = []
    for i in range(0, n, chunk):
        parts.append(fn(min(chunk, n - i)).cpu())
        if progress is not None:
            progress.update(len(parts[-1]))
    return torch.cat(parts)


def default_out(cfg: SampleConfig) -> Path:
    """``out: null``: the samples of a checkpoint go to its run's ``samples/`` folder (beside the run's own
    grids, removed with the run, never overwriting another run's), named after checkpoint, mode, n and seed."""
    ckpt = Path(cfg.ckpt)
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    classes = [cfg.class_] if cfg.class_ is not None else cfg.classes
    which = "" if classes is None else "-class" + "-".join(map(str, classes))
    return run_dir / "samples" / f"{ckpt.stem}-{cfg.mode}{which}-n{cfg.n}-seed{cfg.seed}.png"


def sample(cfg: DictConfig) -> str:
    scfg = command_config(SampleConfig, cfg)
    use_threads(scfg.threads)
    device = pick_device(scfg.device)
    out = Path(scfg.out) if scfg.out else default_out(scfg)
    check_writable(out, "out")
    loaded = load_run(scfg.ckpt, device, data_dir=scfg.data_dir)
    spec = loaded.record.data
    if not scfg.out and not spec.is_image:
        out = out.with_suffix(".npy")
    if out.suffix == ".png" and not spec.is_image:
        raise ConfigError(
            f"out={out} is a PNG grid but this model generates 2D points, not images: use out=<file>.npy"
        )
    copies = 2 if scfg.mode == "reconstruct" else 1
    require_memory(scfg.n * spec.dim * 4 * copies * 2, f"n={scfg.n} samples", "lower n")
    generator = torch.Generator().manual_seed(scfg.seed)
    with torch.no_grad():
        x, nrow = draw(loaded, scfg, generator)
    x = x.float().cpu()
    write_output(x, out, nrow)
    what = scfg.mode + (f", {scfg.class_key}" if scfg.class_key else "")
    if scfg.mode == "prior" and loaded.model.num_classes is not None and scfg.class_ is None:
        what += ", a class grid: one row per class"
    print(f"wrote {len(x)} {'images' if spec.is_image else 'points'} ({what}) to {out}")
    return str(out)


__all__ = ["SampleConfig", "sample"]

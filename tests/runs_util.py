"""Helpers for end-to-end run tests: tiny configs, running the CLI in-process, reading TensorBoard back."""

from __future__ import annotations

from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from genlab.checkpoint import seal
from genlab.cli import main

# a GAN on the 2D ring: seconds per run on CPU
RING_GAN = [
    "dataset=ring",
    "model=gan",
    "model.net=mlp",
    "model.g_hidden=[32,32]",
    "model.d_hidden=[32,32]",
    "model.latent_dim=4",
    "dataset.batch_size=64",
]
# a tiny DCGAN on the built-in shapes dataset (image path: grids, PNGs)
SHAPES_GAN = [
    "dataset=shapes",
    "model=gan",
    "model.g_width=8",
    "model.d_width=8",
    "model.latent_dim=16",
    "dataset.batch_size=16",
]
# a tiny VAE on shapes
SHAPES_VAE = [
    "dataset=shapes",
    "model=vae",
    "model.net=mlp",
    "model.latent_dim=4",
    "dataset.batch_size=16",
    "model.iw_samples=2",
]


def short(steps: int, every: int) -> list[str]:
    return [
        f"trainer.max_steps={steps}",
        f"trainer.val_check_interval={every}",
        "trainer.limit_val_batches=2",
        f"trainer.log_every_n_steps={max(1, every // 2)}",
        f"callbacks.model_checkpoint.every_n_train_steps={every}",
        "trainer.accelerator=cpu",
    ]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """``genlab <args>`` in-process: (exit code, stdout, stderr)."""
    try:
        code = main(list(args)) or 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def run_train(run_dir: Path, *overrides: str) -> None:
    code = main(["train", f"hydra.run.dir={run_dir}", *overrides])
    assert code is None or code == 0


def tensorboard(run_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(
        str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "tensors": 0}
    )
    acc.Reload()
    return acc


def rewritten_checkpoint(ckpt: Path, out: Path, change, reseal: bool = True) -> Path:
    """A copy of ``ckpt`` at ``out`` changed by ``change(data)``, sealed again with fresh digests (a consistent
    forgery) unless ``reseal`` is false (damage the digests catch)."""
    data = torch.load(ckpt, map_location="cpu", weights_only=True)
    change(data)
    if reseal:
        seal(data)
    torch.save(data, out)
    return out


def tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its content (train.log excluded: logging may append to it)."""
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != "train.log"
    }

"""Image grids while training: every model's ``image_panels()`` (or a scatter plot for 2D data).

Each panel goes to every logger that can show images (TensorBoard, MLflow, W&B) under ``images/<name>`` and, for the
main panel, to ``<run dir>/samples/<name>_step<step>.png`` so the latest samples can be opened directly.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor
from torchvision.utils import make_grid, save_image

from genlab.config.schema import check_at_least
from genlab.models.capabilities import Sampler
from genlab.run.loggers import log_images


def scatter_image(samples: Tensor, real: Tensor | None, modes: Tensor | None = None) -> Tensor:
    """A (3, H, W) float image of generated 2D points over the real data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, ax = plt.subplots(figsize=(4, 4), dpi=80)
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=2, c="tab:blue", alpha=0.4, label="data")
    ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:orange", alpha=0.6, label="samples")
    if modes is not None:
        ax.scatter(modes[:, 0], modes[:, 1], s=30, c="k", marker="x", label="modes")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_aspect("equal")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    buf.seek(0)
    img = torch.from_numpy(np.array(Image.open(buf).convert("RGB"))).permute(2, 0, 1)
    return img.float() / 255


@dataclass(frozen=True)
class ImageGridsConfig:
    """``callbacks.image_grids``."""

    # null: after every validation round (trainer.val_check_interval) and at the end
    every_n_steps: int | None = None
    # generated points in the 2D scatter plot
    n_scatter: int = 1000
    # also write the main grid to <run dir>/samples/
    save_png: bool = True

    def __post_init__(self) -> None:
        if self.every_n_steps is not None:
            check_at_least("callbacks.image_grids.every_n_steps", self.every_n_steps, 1, 500)
        check_at_least("callbacks.image_grids.n_scatter", self.n_scatter, 1, 1000)


class ImageGrids(pl.Callback):
    """Logs after every validation round (or every ``every_n_steps``); ``genlab train`` calls
    :meth:`log_panels` once more when training and its final validation are over (once per step)."""

    config_class = ImageGridsConfig

    def __init__(self, config: ImageGridsConfig) -> None:
        self.every_n_steps = config.every_n_steps
        self.n_scatter = config.n_scatter
        self.save_png = config.save_png
        self._last_step = -1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self.log_panels(trainer, pl_module)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not self.every_n_steps and not trainer.sanity_checking and trainer.state.fn == "fit":
            self.log_panels(trainer, pl_module)

    @torch.no_grad()
    def panels(self, trainer, pl_module) -> dict[str, Tensor]:
        if pl_module.spec.is_image:
            return {
                name: make_grid(imgs.float().cpu(), nrow=nrow, padding=2, pad_value=1.0)
                for name, (imgs, nrow) in pl_module.image_panels().items()
            }
        # own generators: logging must not consume the training RNG (a resumed run must continue identically)
        dm = trainer.datamodule
        real = (
            dm.real_samples(self.n_scatter, split="train", generator=torch.Generator().manual_seed(0))
            if hasattr(dm, "real_samples")
            else None
        )
        samples = pl_module.sample(self.n_scatter, generator=torch.Generator().manual_seed(1)).float().cpu()
        return {"scatter": scatter_image(samples, real, getattr(dm, "modes", None))}

    def log_panels(self, trainer, pl_module) -> None:
        if (
            not trainer.is_global_zero
            or self._last_step == trainer.global_step
            or not isinstance(pl_module, Sampler)
        ):
            return
        self._last_step = trainer.global_step
        grids = self.panels(trainer, pl_module)
        step = trainer.global_step
        log_images(trainer.loggers, grids, step)
        if self.save_png and grids:
            out = Path(trainer.default_root_dir) / "samples"
            out.mkdir(parents=True, exist_ok=True)
            name = "samples" if "samples" in grids else next(iter(grids))
            save_image(grids[name], out / f"{name}_step{step:07d}.png")

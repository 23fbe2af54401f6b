"""GANConfig: every key of ``configs/model/gan.yaml`` (except ``_target_``), typed and range-checked."""

from __future__ import annotations

from dataclasses import dataclass, field

from genlab.errors import ConfigError

NETS = ("dcgan", "resnet", "mlp")
LOSS_NAMES = ("ns", "hinge", "wgan")
AUGMENTATIONS = ("translation", "cutout", "color")
IMAGE_SIZES = {"dcgan": (32, 64, 128), "resnet": (32, 64)}
WGAN_DEFAULT_GP = 10.0


def _allowed(key: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"model.{key}={value!r} is not known; allowed: {', '.join(map(str, allowed))}")


def _at_least(key: str, value, low, example) -> None:
    if not value >= low:
        raise ConfigError(f"model.{key}={value} must be >= {low} (e.g. model.{key}={example})")


@dataclass
class GANConfig:
    net: str = "dcgan"
    latent_dim: int = 100
    g_width: int = 64
    d_width: int = 64
    # hidden layer sizes of the mlp nets (2D ring/grid data)
    g_hidden: list[int] = field(default_factory=lambda: [256, 256, 256])
    d_hidden: list[int] = field(default_factory=lambda: [256, 256, 256])
    loss: str = "ns"
    # gradient penalty weight (WGAN-GP); null = 10 for loss=wgan, 0 (off) otherwise
    gp_lambda: float | None = None
    r1_gamma: float = 0.0
    spectral_norm: bool = False
    n_critic: int = 1
    ema: bool = False
    ema_decay: float = 0.999
    # TTUR: separate learning rates; null = optimizer.lr
    lr_g: float | None = None
    lr_d: float | None = None
    # clip each network's gradient norm to this value; 0 = off
    grad_clip: float = 0.0
    # DiffAugment policy applied to every D input: comma list of translation,cutout,color; "" = off
    diffaugment: str = ""
    # PacGAN: D judges `pack` samples at once
    pack: int = 1
    channels_last: bool = False
    compile: bool = False
    # the metric a checkpoint callback / sweeper should watch (e.g. val/hq_fraction for 2D data)
    monitor: str | None = None

    def __post_init__(self) -> None:
        _allowed("net", self.net, NETS)
        _allowed("loss", self.loss, LOSS_NAMES)
        _at_least("latent_dim", self.latent_dim, 1, 100)
        _at_least("g_width", self.g_width, 1, 64)
        _at_least("d_width", self.d_width, 1, 64)
        for key in ("g_hidden", "d_hidden"):
            sizes = list(getattr(self, key))
            if not sizes or any(int(s) < 1 for s in sizes):
                raise ConfigError(
                    f"model.{key}={sizes} must be a non-empty list of positive sizes, e.g. [256,256]"
                )
        if self.gp_lambda is not None:
            _at_least("gp_lambda", self.gp_lambda, 0, 10)
        _at_least("r1_gamma", self.r1_gamma, 0, 10)
        _at_least("n_critic", self.n_critic, 1, 5)
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(
                f"model.ema_decay={self.ema_decay} must be in [0, 1) (e.g. model.ema_decay=0.999)"
            )
        for key in ("lr_g", "lr_d"):
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise ConfigError(f"model.{key}={value} must be > 0 or null (null = optimizer.lr)")
        _at_least("grad_clip", self.grad_clip, 0, 1.0)
        for name in self.augmentations:
            _allowed("diffaugment", name, AUGMENTATIONS)
        _at_least("pack", self.pack, 1, 4)

    @property
    def gradient_penalty(self) -> float:
        """The effective WGAN-GP weight: gp_lambda, defaulting to 10 for loss=wgan and 0 otherwise."""
        if self.gp_lambda is not None:
            return float(self.gp_lambda)
        return WGAN_DEFAULT_GP if self.loss == "wgan" else 0.0

    @property
    def augmentations(self) -> list[str]:
        return [a.strip() for a in self.diffaugment.split(",") if a.strip()]

"""GANConfig: every key of ``configs/model/gan.yaml`` (except ``_target_``), typed and range-checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from genlab.config.schema import check_at_least, check_choice, check_positive, require
from genlab.models.optim import OptimizerConfig

NETS = ("dcgan", "resnet", "mlp")
LOSS_NAMES = ("ns", "hinge", "wgan")
AUGMENTATIONS = ("translation", "cutout", "color")
IMAGE_SIZES = {"dcgan": (32, 64, 128), "resnet": (32, 64)}
WGAN_DEFAULT_GP = 10.0


@dataclass(frozen=True)
class GANConfig:
    net: str = "dcgan"  # dcgan (32/64/128 px) | resnet (SNGAN blocks, 32/64 px) | mlp (2D ring/grid data)
    latent_dim: int = 100  # size of the noise vector z
    g_width: int = 64  # base channel width of G (conv nets)
    d_width: int = 64  # base channel width of D (conv nets)
    g_hidden: list[int] = field(default_factory=lambda: [256, 256, 256])  # mlp G hidden layer sizes
    d_hidden: list[int] = field(default_factory=lambda: [256, 256, 256])  # mlp D hidden layer sizes
    loss: str = "ns"  # ns (non-saturating) | hinge | wgan
    # gradient penalty weight (WGAN-GP); null = 10 for loss=wgan, 0 (off) otherwise
    gp_lambda: float | None = None
    r1_gamma: float = 0.0  # R1 penalty gamma on real data; 0 = off
    spectral_norm: bool = False  # spectral normalization of every D layer
    n_critic: int = 1  # D updates per G update (all on the same real batch)
    ema: bool = False  # sample and evaluate with an exponential moving average of G's weights
    ema_decay: float = 0.999  # decay of that moving average
    lr_g: float | None = None  # TTUR: G's learning rate; null = optimizer.lr
    lr_d: float | None = None  # TTUR: D's learning rate; null = optimizer.lr
    # clip each network's gradient norm to this value; 0 = off
    grad_clip: float = 0.0
    # DiffAugment policy applied to every D input: comma list of translation,cutout,color; "" = off
    diffaugment: str = ""
    # PacGAN: D judges `pack` samples at once
    pack: int = 1
    # class-conditional (needs a labelled dataset): G reads the label (embedding concatenated to z, conditional
    # BatchNorm in dcgan/resnet), D is a projection discriminator (Miyato & Koyama 2018)
    conditional: bool = False
    # conditional: size of G's class embedding concatenated to z (0: none, dcgan/resnet conditional BatchNorm only)
    class_dim: int = 32
    # conditional: weight of the ACGAN auxiliary classifier loss (D classifies real images, G its samples); 0 = off
    ac_weight: float = 0.0
    channels_last: bool = False  # channels-last memory format (GPU speed)
    compile: bool = False  # torch.compile G and D (GPU speed)
    # the metric a checkpoint callback / sweeper should watch (e.g. val/hq_fraction for 2D data)
    monitor: str | None = None

    # what a resumed run cannot change: the shape of the networks and of their objective
    resume_fixed: ClassVar[tuple[str, ...]] = (
        "net",
        "latent_dim",
        "g_width",
        "d_width",
        "g_hidden",
        "d_hidden",
        "loss",
        "spectral_norm",
        "ema",
        "pack",
        "conditional",
        "class_dim",
        "ac_weight",  # 0 <-> > 0 adds or removes D's classifier head
    )

    def __post_init__(self) -> None:
        check_choice("model.net", self.net, NETS)
        check_choice("model.loss", self.loss, LOSS_NAMES)
        check_at_least("model.latent_dim", self.latent_dim, 1, 100)
        check_at_least("model.g_width", self.g_width, 1, 64)
        check_at_least("model.d_width", self.d_width, 1, 64)
        for key in ("g_hidden", "d_hidden"):
            sizes = list(getattr(self, key))
            require(
                bool(sizes) and all(int(s) >= 1 for s in sizes),
                f"model.{key}={sizes} must be a non-empty list of positive sizes, e.g. [256,256]",
            )
        if self.gp_lambda is not None:
            check_at_least("model.gp_lambda", self.gp_lambda, 0, 10)
        check_at_least("model.r1_gamma", self.r1_gamma, 0, 10)
        check_at_least("model.n_critic", self.n_critic, 1, 5)
        require(
            0 <= self.ema_decay < 1,
            f"model.ema_decay={self.ema_decay} must be in [0, 1) (e.g. model.ema_decay=0.999)",
        )
        for key in ("lr_g", "lr_d"):
            if getattr(self, key) is not None:
                check_positive(f"model.{key}", getattr(self, key), 2e-4)
        check_at_least("model.grad_clip", self.grad_clip, 0, 1.0)
        for name in self.augmentations:
            check_choice("model.diffaugment", name, AUGMENTATIONS)
        check_at_least("model.pack", self.pack, 1, 4)
        check_at_least("model.class_dim", self.class_dim, 0, 32)
        require(
            not (self.conditional and self.class_dim == 0 and self.net == "mlp"),
            "model.class_dim=0 leaves net=mlp without the label (its generator has no conditional BatchNorm); "
            "set model.class_dim >= 1",
        )
        check_at_least("model.ac_weight", self.ac_weight, 0, 1.0)
        require(
            self.conditional or self.ac_weight == 0,
            f"model.ac_weight={self.ac_weight} needs model.conditional=true (the auxiliary classifier learns "
            "the labels); set model.conditional=true or model.ac_weight=0",
        )
        require(
            not (self.conditional and self.pack > 1),
            f"model.pack={self.pack} cannot be combined with model.conditional=true: the projection "
            "discriminator scores one labelled sample at a time; set model.pack=1",
        )

    def learning_rates(self, optimizer: OptimizerConfig) -> tuple[float, float]:
        """G's and D's learning rates: ``lr_g`` / ``lr_d`` (TTUR), each ``optimizer.lr`` when null."""
        return (
            optimizer.lr if self.lr_g is None else self.lr_g,
            optimizer.lr if self.lr_d is None else self.lr_d,
        )

    @property
    def gradient_penalty(self) -> float:
        """The effective WGAN-GP weight: gp_lambda, defaulting to 10 for loss=wgan and 0 otherwise."""
        if self.gp_lambda is not None:
            return float(self.gp_lambda)
        return WGAN_DEFAULT_GP if self.loss == "wgan" else 0.0

    @property
    def augmentations(self) -> list[str]:
        return [a.strip() for a in self.diffaugment.split(",") if a.strip()]

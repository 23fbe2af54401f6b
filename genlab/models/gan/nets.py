"""Generator / discriminator networks, sized from the data spec.

Generators map ``(B, latent_dim)`` to ``(B, *spec.shape)``; discriminators map ``(B, in_channels, ...)``
to ``(B,)`` LOGITS (no sigmoid: the losses use stable logit forms, safe under mixed precision).
``in_channels`` is ``pack * C`` (PacGAN) for images and ``pack * D`` for vectors.

- ``dcgan``: Radford et al. 2016 (transposed convs + BN + ReLU, tanh; strided convs + LeakyReLU(0.2),
  BN except on the first layer), 32/64/128 px, weights N(0, 0.02), BN weights N(1, 0.02).
- ``resnet``: SNGAN-style residual blocks (Miyato et al. 2018), 32/64 px.
- ``mlp``: fully connected nets for the 2D ring/grid data.

Every discriminator is ``head(features(x))``: ``features`` (phi, ``(B, feature_dim)``) and ``head`` (psi, a
linear map to one logit) are what the projection discriminator of conditional GANs builds on. Conditional
generators (``num_classes > 0``) take ``(z, y)``: a class embedding of ``class_dim`` is concatenated to z, and
the conv generators use class-conditional batch norm (:mod:`genlab.models.gan.conditioning`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from genlab.config.spec import DataSpec
from genlab.models.gan.conditioning import ProjectionDiscriminator, batch_norm_2d, run_layers
from genlab.models.gan.config import GANConfig


def dcgan_init(module: nn.Module) -> None:
    """Radford et al.: conv weights N(0, 0.02), batch-norm weights N(1, 0.02) and zero bias."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def apply_spectral_norm(net: nn.Module) -> nn.Module:
    """Spectral-normalize every conv / linear weight (and projection embedding) of ``net`` (in place)."""
    for module in list(net.modules()):
        if isinstance(module, (nn.Conv2d, nn.Linear, nn.Embedding)):
            spectral_norm(module)
    return net


def num_upsamplings(size: int) -> int:
    """Stride-2 stages between a 4x4 map and ``size`` x ``size``."""
    return int(math.log2(size)) - 2


# ---- DCGAN ---------------------------------------------------------------------------------------
class ClassInput(nn.Module):
    """The generator input of a conditional net: ``[z, embed(y)]`` (just z when unconditional)."""

    def __init__(self, num_classes: int, class_dim: int) -> None:
        super().__init__()
        self.dim = class_dim if num_classes else 0
        self.embed = nn.Embedding(num_classes, class_dim) if num_classes and class_dim else None

    def forward(self, z: Tensor, y: Tensor | None) -> Tensor:
        if self.embed is None:
            return z
        return torch.cat([z, self.embed(y)], dim=1)


class DCGANGenerator(nn.Module):
    def __init__(
        self, latent_dim: int, channels: int, size: int, width: int, num_classes: int = 0, class_dim: int = 0
    ) -> None:
        super().__init__()
        n = num_upsamplings(size)
        ch = width * 2 ** (n - 1)
        self.input = ClassInput(num_classes, class_dim)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim + self.input.dim, ch, 4, 1, 0, bias=False),
            batch_norm_2d(ch, num_classes),
            nn.ReLU(True),
        ]
        for _ in range(n - 1):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                batch_norm_2d(ch // 2, num_classes),
                nn.ReLU(True),
            ]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.input(z, y)
        return run_layers(self.net, h.view(h.size(0), -1, 1, 1), y)


class DCGANDiscriminator(nn.Module):
    def __init__(self, in_channels: int, size: int, width: int, batch_norm: bool = True) -> None:
        super().__init__()
        n = num_upsamplings(size)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = width
        for _ in range(n - 1):
            layers.append(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(ch * 2))
            layers.append(nn.LeakyReLU(0.2, True))
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, 4, 1, 0))
        self.net = nn.Sequential(*layers)
        self.feature_shape = (ch, 4, 4)  # phi(x): the last 4x4 map, flattened
        self.feature_dim = ch * 16
        self.apply(dcgan_init)

    def features(self, x: Tensor) -> Tensor:
        return self.net[:-1](x).reshape(x.size(0), -1)

    def head(self, h: Tensor) -> Tensor:
        return self.net[-1](h.view(-1, *self.feature_shape)).view(-1)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).view(-1)


# ---- ResNet (SNGAN-style) ------------------------------------------------------------------------
class UpBlock(nn.Module):
    """BN-ReLU-Up-Conv3-BN-ReLU-Conv3 plus an upsampled 1x1-conv shortcut (class-conditional BN when
    ``num_classes > 0``)."""

    def __init__(self, cin: int, cout: int, num_classes: int = 0) -> None:
        super().__init__()
        self.main = nn.Sequential(
            batch_norm_2d(cin, num_classes),
            nn.ReLU(),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(cin, cout, 3, 1, 1),
            batch_norm_2d(cout, num_classes),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1),
        )
        self.shortcut = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(cin, cout, 1))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return run_layers(self.main, x, y) + self.shortcut(x)


class DownBlock(nn.Module):
    """(ReLU)-Conv3-ReLU-Conv3-AvgPool plus a 1x1-conv + AvgPool shortcut; the first block skips the pre-ReLU."""

    def __init__(self, cin: int, cout: int, first: bool) -> None:
        super().__init__()
        pre = [] if first else [nn.ReLU()]
        self.main = nn.Sequential(
            *pre, nn.Conv2d(cin, cout, 3, 1, 1), nn.ReLU(), nn.Conv2d(cout, cout, 3, 1, 1), nn.AvgPool2d(2)
        )
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1), nn.AvgPool2d(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x) + self.shortcut(x)


class ResNetGenerator(nn.Module):
    def __init__(
        self, latent_dim: int, channels: int, size: int, width: int, num_classes: int = 0, class_dim: int = 0
    ) -> None:
        super().__init__()
        n = num_upsamplings(size)
        widths = [width * 2**k for k in reversed(range(n))]  # e.g. 32 px: 4w, 2w, w
        self.start = widths[0]
        self.input = ClassInput(num_classes, class_dim)
        self.linear = nn.Linear(latent_dim + self.input.dim, 4 * 4 * widths[0])
        self.blocks = nn.Sequential(
            *(
                UpBlock(cin, cout, num_classes)
                for cin, cout in zip([widths[0], *widths[:-1]], widths, strict=True)
            )
        )
        self.out = nn.Sequential(
            nn.BatchNorm2d(widths[-1]), nn.ReLU(), nn.Conv2d(widths[-1], channels, 3, 1, 1), nn.Tanh()
        )

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.linear(self.input(z, y)).view(z.size(0), self.start, 4, 4)
        for block in self.blocks:
            h = block(h, y)
        return self.out(h)


class ResNetDiscriminator(nn.Module):
    def __init__(self, in_channels: int, size: int, width: int) -> None:
        super().__init__()
        n = num_upsamplings(size)
        widths = [width * 2**k for k in range(n)]  # e.g. 32 px: w, 2w, 4w
        self.blocks = nn.Sequential(
            *(
                DownBlock(cin, cout, first=i == 0)
                for i, (cin, cout) in enumerate(zip([in_channels, *widths[:-1]], widths, strict=True))
            )
        )
        self.linear = nn.Linear(widths[-1], 1)
        self.feature_dim = widths[-1]

    def features(self, x: Tensor) -> Tensor:
        return torch.relu(self.blocks(x)).sum(dim=(2, 3))  # global sum pooling

    def head(self, h: Tensor) -> Tensor:
        return self.linear(h).view(-1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


# ---- MLP (2D data) -------------------------------------------------------------------------------
def mlp(sizes: list[int], activation: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    def __init__(
        self, latent_dim: int, dim: int, hidden: list[int], num_classes: int = 0, class_dim: int = 0
    ) -> None:
        super().__init__()
        self.input = ClassInput(num_classes, class_dim)
        self.net = mlp([latent_dim + self.input.dim, *hidden, dim], nn.ReLU)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.net(self.input(z, y))


class MLPDiscriminator(nn.Module):
    def __init__(self, in_features: int, hidden: list[int]) -> None:
        super().__init__()
        self.net = mlp([in_features, *hidden, 1], lambda: nn.LeakyReLU(0.2))
        self.feature_dim = hidden[-1]

    def features(self, x: Tensor) -> Tensor:
        return self.net[:-1](x)

    def head(self, h: Tensor) -> Tensor:
        return self.net[-1](h).view(-1)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).view(-1)


# ---- builders ------------------------------------------------------------------------------------
def d_uses_batch_norm(config: GANConfig) -> bool:
    """BatchNorm in D mixes samples, which breaks per-sample penalties and fights spectral norm: only
    the plain DCGAN discriminator keeps it."""
    return not (config.spectral_norm or config.gradient_penalty > 0 or config.r1_gamma > 0)


def condition_classes(config: GANConfig, spec: DataSpec) -> int:
    """Classes the networks are conditioned on: 0 for an unconditional GAN."""
    return int(spec.num_classes or 0) if config.conditional else 0


def build_generator(config: GANConfig, spec: DataSpec) -> nn.Module:
    classes = condition_classes(config, spec)
    if config.net == "mlp":
        return MLPGenerator(config.latent_dim, spec.dim, list(config.g_hidden), classes, config.class_dim)
    cls = DCGANGenerator if config.net == "dcgan" else ResNetGenerator
    return cls(config.latent_dim, spec.channels, spec.image_size, config.g_width, classes, config.class_dim)


def build_discriminator(config: GANConfig, spec: DataSpec) -> nn.Module:
    """The configured D; a :class:`ProjectionDiscriminator` around it when the GAN is conditional."""
    classes = condition_classes(config, spec)
    if config.net == "mlp":
        net: nn.Module = MLPDiscriminator(config.pack * spec.dim, list(config.d_hidden))
    elif config.net == "dcgan":
        net = DCGANDiscriminator(
            config.pack * spec.channels, spec.image_size, config.d_width, d_uses_batch_norm(config)
        )
    else:
        net = ResNetDiscriminator(config.pack * spec.channels, spec.image_size, config.d_width)
    if classes:
        net = ProjectionDiscriminator(net, classes, ac=config.ac_weight > 0)
    return apply_spectral_norm(net) if config.spectral_norm else net

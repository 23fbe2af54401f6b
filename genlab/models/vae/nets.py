"""Encoder/decoder pairs, sized from the data spec.

Every encoder maps x (B, *shape) to (B, 2 * latent_dim) = [mu, logvar]; every decoder maps
z (B, latent_dim) to (B, *shape): Bernoulli logits or the Gaussian mean, depending on the likelihood.

conv and resnet halve the image with stride-2 convolutions until it is odd or at most 7 pixels
(28 -> 14 -> 7, 32 -> ... -> 4, 64 -> ... -> 4) and the decoder mirrors that with stride-2
transposed convolutions, so each supported size is reproduced exactly.

Conditional VAE (Sohn et al. 2015; ``num_classes > 0``): the one-hot label is concatenated to the input of one
linear layer of each net, the encoder's first fully connected layer (mlp: its input layer; conv/resnet: the
layer after the convolutions) and the decoder's first layer (next to z). The label's weights are extra
input columns of those layers, so a weight of zero on them is exactly the unconditional net.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genlab.config.spec import DataSpec

IMAGE_SIZES = {"conv": (28, 32, 64), "resnet": (28, 32, 64), "mlp": None}
MAX_WIDTH_FACTOR = 8


def num_downsamplings(size: int) -> int:
    """How many times the conv nets halve an image of this size (see the module docstring)."""
    n = 0
    while size % 2 == 0 and size > 7:
        size //= 2
        n += 1
    return n


class LabelledSequential(nn.Sequential):
    """A Sequential that concatenates the one-hot label ``c`` to the input of its layer ``at``."""

    def __init__(self, *layers: nn.Module, at: int) -> None:
        super().__init__(*layers)
        self.at = at

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        for i, layer in enumerate(self):
            if i == self.at:
                x = torch.cat([x, c.to(x.dtype)], dim=1)
            x = layer(x)
        return x


def sequential(layers: list[nn.Module], num_classes: int, at: int) -> nn.Sequential:
    return LabelledSequential(*layers, at=at) if num_classes else nn.Sequential(*layers)


def stage_widths(channels: int, stages: int) -> list[int]:
    return [channels * min(2**i, MAX_WIDTH_FACTOR) for i in range(stages)]


class ResBlock(nn.Module):
    """x + conv(act(conv(act(x)))): pre-activation residual block at constant width."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.SiLU(), nn.Conv2d(width, width, 3, padding=1), nn.SiLU(), nn.Conv2d(width, width, 3, padding=1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def _conv_encoder(
    spec: DataSpec, latent_dim: int, channels: int, residual: bool, num_classes: int = 0
) -> nn.Module:
    widths = stage_widths(channels, num_downsamplings(spec.image_size))
    layers: list[nn.Module] = []
    c_in = spec.channels
    for width in widths:
        layers += [nn.Conv2d(c_in, width, 4, stride=2, padding=1), nn.SiLU()]
        if residual:
            layers += [ResBlock(width), nn.SiLU()]
        c_in = width
    final = spec.image_size >> len(widths)
    layers += [nn.Flatten(), nn.Linear(c_in * final * final + num_classes, 2 * latent_dim)]
    return sequential(layers, num_classes, at=len(layers) - 1)


def _conv_decoder(
    spec: DataSpec, latent_dim: int, channels: int, residual: bool, num_classes: int = 0
) -> nn.Module:
    widths = stage_widths(channels, num_downsamplings(spec.image_size))
    final = spec.image_size >> len(widths)
    layers: list[nn.Module] = [
        nn.Linear(latent_dim + num_classes, widths[-1] * final * final),
        nn.Unflatten(1, (widths[-1], final, final)),
    ]
    for c_in, c_out in zip(widths[::-1], widths[::-1][1:] + widths[:1], strict=True):
        if residual:
            layers += [ResBlock(c_in)]
        layers += [nn.SiLU(), nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)]
    layers += [nn.SiLU(), nn.Conv2d(widths[0], spec.channels, 3, padding=1)]
    return sequential(layers, num_classes, at=0)


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(d_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, d_out)
    )


def build_encoder(
    net: str, spec: DataSpec, latent_dim: int, channels: int, hidden: int, num_classes: int = 0
) -> nn.Module:
    """x (and the one-hot label when ``num_classes > 0``) -> [mu, logvar]."""
    if net == "mlp":
        layers = [nn.Flatten(), _mlp(spec.dim + num_classes, hidden, 2 * latent_dim)]
        return sequential(layers, num_classes, at=1)
    return _conv_encoder(spec, latent_dim, channels, net == "resnet", num_classes)


def build_decoder(
    net: str, spec: DataSpec, latent_dim: int, channels: int, hidden: int, num_classes: int = 0
) -> nn.Module:
    """z (and the one-hot label when ``num_classes > 0``) -> logits or Gaussian mean."""
    if net == "mlp":
        layers = [_mlp(latent_dim + num_classes, hidden, spec.dim), nn.Unflatten(1, tuple(spec.shape))]
        return sequential(layers, num_classes, at=0)
    return _conv_decoder(spec, latent_dim, channels, net == "resnet", num_classes)

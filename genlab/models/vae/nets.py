"""Encoder/decoder pairs, sized from the data spec.

Every encoder maps x (B, *shape) to (B, 2 * latent_dim) = [mu, logvar]; every decoder maps
z (B, latent_dim) to (B, *shape): Bernoulli logits or the Gaussian mean, depending on the likelihood.

conv and resnet halve the image with stride-2 convolutions until it is odd or at most 7 pixels
(28 -> 14 -> 7, 32 -> ... -> 4, 64 -> ... -> 4) and the decoder mirrors that with stride-2
transposed convolutions, so each supported size is reproduced exactly.
"""

from __future__ import annotations

from torch import Tensor, nn

from genlab.data.spec import DataSpec

IMAGE_SIZES = {"conv": (28, 32, 64), "resnet": (28, 32, 64), "mlp": None}
MAX_WIDTH_FACTOR = 8


def num_downsamplings(size: int) -> int:
    """How many times the conv nets halve an image of this size (see the module docstring)."""
    n = 0
    while size % 2 == 0 and size > 7:
        size //= 2
        n += 1
    return n


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


def _conv_encoder(spec: DataSpec, latent_dim: int, channels: int, residual: bool) -> nn.Module:
    widths = stage_widths(channels, num_downsamplings(spec.image_size))
    layers: list[nn.Module] = []
    c_in = spec.channels
    for width in widths:
        layers += [nn.Conv2d(c_in, width, 4, stride=2, padding=1), nn.SiLU()]
        if residual:
            layers += [ResBlock(width), nn.SiLU()]
        c_in = width
    final = spec.image_size >> len(widths)
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in * final * final, 2 * latent_dim))


def _conv_decoder(spec: DataSpec, latent_dim: int, channels: int, residual: bool) -> nn.Module:
    widths = stage_widths(channels, num_downsamplings(spec.image_size))
    final = spec.image_size >> len(widths)
    layers: list[nn.Module] = [
        nn.Linear(latent_dim, widths[-1] * final * final),
        nn.Unflatten(1, (widths[-1], final, final)),
    ]
    for c_in, c_out in zip(widths[::-1], widths[::-1][1:] + widths[:1], strict=True):
        if residual:
            layers += [ResBlock(c_in)]
        layers += [nn.SiLU(), nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)]
    layers += [nn.SiLU(), nn.Conv2d(widths[0], spec.channels, 3, padding=1)]
    return nn.Sequential(*layers)


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(d_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, d_out)
    )


def build_encoder(net: str, spec: DataSpec, latent_dim: int, channels: int, hidden: int) -> nn.Module:
    if net == "mlp":
        return nn.Sequential(nn.Flatten(), _mlp(spec.dim, hidden, 2 * latent_dim))
    return _conv_encoder(spec, latent_dim, channels, residual=net == "resnet")


def build_decoder(net: str, spec: DataSpec, latent_dim: int, channels: int, hidden: int) -> nn.Module:
    if net == "mlp":
        return nn.Sequential(_mlp(latent_dim, hidden, spec.dim), nn.Unflatten(1, tuple(spec.shape)))
    return _conv_decoder(spec, latent_dim, channels, residual=net == "resnet")

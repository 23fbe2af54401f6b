"""Class conditioning of the GAN networks (``model.conditional=true``).

- :class:`ConditionalBatchNorm2d`: batch norm whose scale and shift are looked up per class (de Vries et al.
  2017; mimicry's cGAN generator), initialized to the identity transform of a plain BatchNorm.
- :func:`run_layers`: a ``Sequential`` run layer by layer, the conditional norms also reading the labels
  (unconditional nets keep their ``Sequential`` and its state-dict keys).
- :class:`ProjectionDiscriminator`: ``D(x, y) = psi(phi(x)) + <embed(y), phi(x)>`` (Miyato & Koyama 2018) around
  any genlab discriminator that exposes ``features`` (phi) and ``head`` (psi); with ``ac=True`` also an ACGAN
  auxiliary classifier on phi(x) (Odena et al. 2017).
"""

from __future__ import annotations

from torch import Tensor, nn


class ConditionalBatchNorm2d(nn.Module):
    """``BatchNorm2d(affine=False)`` followed by a per-class scale (init 1 + N(0, 0.02)) and shift (init 0)."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.num_features = num_features
        self.norm = nn.BatchNorm2d(num_features, affine=False)
        self.embed = nn.Embedding(num_classes, 2 * num_features)
        nn.init.normal_(self.embed.weight[:, :num_features], 1.0, 0.02)
        nn.init.zeros_(self.embed.weight[:, num_features:])

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        gamma, beta = self.embed(y).chunk(2, dim=1)
        return self.norm(x) * gamma[:, :, None, None] + beta[:, :, None, None]


def run_layers(layers: nn.Sequential, x: Tensor, y: Tensor | None) -> Tensor:
    """``layers(x)``, except that conditional batch norms also get the labels ``y``."""
    if y is None:
        return layers(x)
    for layer in layers:
        x = layer(x, y) if isinstance(layer, ConditionalBatchNorm2d) else layer(x)
    return x


def batch_norm_2d(channels: int, num_classes: int) -> nn.Module:
    """A plain BatchNorm2d for unconditional nets, a class-conditional one otherwise."""
    return ConditionalBatchNorm2d(channels, num_classes) if num_classes else nn.BatchNorm2d(channels)


class ProjectionDiscriminator(nn.Module):
    """The projection discriminator around ``base`` (which maps ``features(x) -> (B, F)``, ``head(h) -> (B,)``).

    ``forward(x, y)`` returns the logits ``head(h) + sum_j embed(y)_j h_j`` with ``h = features(x)``;
    ``forward(x, y, with_classes=True)`` also the auxiliary classifier's class logits (None without one).
    """

    def __init__(self, base: nn.Module, num_classes: int, ac: bool = False) -> None:
        super().__init__()
        self.base = base
        dim = int(base.feature_dim)
        self.embed = nn.Embedding(num_classes, dim)
        nn.init.xavier_uniform_(self.embed.weight)  # mimicry: the projection starts at the scale of the head
        self.classifier = nn.Linear(dim, num_classes) if ac else None

    def forward(
        self, x: Tensor, y: Tensor, with_classes: bool = False
    ) -> Tensor | tuple[Tensor, Tensor | None]:
        h = self.base.features(x)
        logits = self.base.head(h) + (self.embed(y) * h).sum(dim=1)
        if not with_classes:
            return logits
        return logits, (self.classifier(h) if self.classifier is not None else None)

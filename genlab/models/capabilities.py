"""What callers may ask of a model, as small protocols: ask ``isinstance(model, Sampler)``, never the family name.

Each model class declares the protocols it implements by inheriting them, so the check is an explicit
promise of the class rather than a guess from attribute names.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from genlab.config.spec import DataSpec


@runtime_checkable
class Sampler(Protocol):
    """Draws samples from a latent prior (GANs, VAEs); a class-conditional one (``num_classes`` not None) also
    takes the classes to draw as ``labels``."""

    spec: DataSpec

    @property
    def latent_dim(self) -> int: ...

    @property
    def num_classes(self) -> int | None: ...

    def sample(
        self, n: int, generator: torch.Generator | None = None, labels: Tensor | None = None
    ) -> Tensor: ...

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor: ...

    def to_unit(self, x: Tensor) -> Tensor: ...

    def interpolation_grid(
        self, rows: int = 8, steps: int = 10, z: Tensor | None = None, labels: Tensor | None = None
    ) -> Tensor: ...

    def class_grid(
        self,
        classes: list[int] | None = None,
        columns: int = 10,
        z: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor: ...

    def image_panels(self) -> dict[str, tuple[Tensor, int]]: ...


@runtime_checkable
class Reconstructor(Protocol):
    """Maps data through a latent code and back (autoencoders)."""

    def reconstruct(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class LikelihoodModel(Protocol):
    """Has a variational likelihood bound: ELBO terms per example and an importance-weighted bound."""

    def binarize(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor: ...

    def elbo_terms(self, x: Tensor, generator: torch.Generator | None = None): ...

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]: ...

    def recon_nll(self, x: Tensor, z: Tensor) -> Tensor: ...

    def log_prior(self, z: Tensor) -> Tensor: ...


@runtime_checkable
class FeatureNet(Protocol):
    """A classifier whose penultimate activations serve as an evaluation feature space."""

    num_features: int

    def features(self, x: Tensor) -> Tensor: ...

    def classify(self, features: Tensor) -> Tensor: ...


@runtime_checkable
class HealthSignals(Protocol):
    """Hands over the scalars its training step already computed on a logging step (losses, D accuracy, gradient
    norms, KL per latent dim): the health monitor reads them without a second forward pass."""

    def pop_health_signals(self) -> dict[str, Tensor | float] | None:
        """The signals the training step left in ``self._health`` on its last logging step, once."""
        signals, self._health = self._health, None
        return signals

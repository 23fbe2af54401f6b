"""The VampPrior (Tomczak & Welling 2018): p(z) = (1/K) sum_k q(z | u_k), the encoder's posterior averaged over K
learned pseudo-inputs u_k.

The prior approximates the aggregate posterior the encoder produces, so the KL term stops pulling every posterior
towards N(0, I); the paper reports about 3 nats better MNIST likelihoods for a one-layer VAE. The pseudo-inputs
live in data space (clamped to the data's value range, as the paper's hardtanh does) and are trained with the rest
of the model; the encoder maps them to the components' (mu_k, logvar_k) whenever the prior is evaluated.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

PSEUDO_INPUT_MEAN, PSEUDO_INPUT_STD = (
    0.05,
    0.01,
)  # the paper's initialization, as a fraction of the value range


class VampPrior(nn.Module):
    def __init__(
        self, components: int, shape: Sequence[int], value_range: tuple[float, float] | None
    ) -> None:
        super().__init__()
        self.value_range = value_range
        noise = torch.randn(components, *shape, generator=torch.Generator().manual_seed(0))
        if value_range is None:
            init = noise
        else:
            lo, hi = value_range
            init = lo + (hi - lo) * (PSEUDO_INPUT_MEAN + PSEUDO_INPUT_STD * noise)
        self.pseudo_inputs = nn.Parameter(init)

    @property
    def components(self) -> int:
        return len(self.pseudo_inputs)

    def inputs(self) -> Tensor:
        """The K pseudo-inputs, clamped to the data's value range (gradients pass inside it)."""
        if self.value_range is None:
            return self.pseudo_inputs
        return torch.nn.functional.hardtanh(self.pseudo_inputs, *self.value_range)

    @staticmethod
    def draw(mu: Tensor, logvar: Tensor, index: Tensor, eps: Tensor) -> Tensor:
        """z = mu_k + sigma_k * eps for component ``index`` (n,) and standard-normal noise ``eps`` (n, D)."""
        return mu[index] + torch.exp(0.5 * logvar[index]) * eps

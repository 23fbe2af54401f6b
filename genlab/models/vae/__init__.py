"""The VAE family: typed config, networks, objective functions and the Lightning module."""

from genlab.models.vae.config import VAEConfig
from genlab.models.vae.module import VAE
from genlab.models.vae.objective import iwae_nll

__all__ = ["VAE", "VAEConfig", "iwae_nll"]

"""Model families: each a LightningModule with its own typed config, looked up by name in :data:`MODELS`."""

from genlab.config.registry import Registry
from genlab.models.classifier import Classifier
from genlab.models.gan import GAN
from genlab.models.vae import VAE

MODELS: Registry = Registry("model.family", {"gan": GAN, "vae": VAE, "classifier": Classifier})

__all__ = ["MODELS"]

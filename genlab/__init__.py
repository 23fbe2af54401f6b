"""genlab: config-driven experiments for generative image models (GANs and VAEs)."""

__version__ = "0.1.0"

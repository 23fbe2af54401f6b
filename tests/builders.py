"""Test shorthand: build a model or datamodule from keyword keys through its typed config."""

from __future__ import annotations

from genlab.models.optim import OptimizerConfig


def build(cls, data=None, optimizer=None, **keys):
    """``build(GAN, spec, net="mlp")`` == ``GAN(GANConfig(net="mlp"), spec)``; datamodules take no spec."""
    config = cls.config_class(**keys)
    if hasattr(cls, "native_spec"):  # a datamodule
        return cls(config) if data is None else cls(config, data)
    if isinstance(optimizer, dict):
        optimizer = OptimizerConfig(**optimizer)
    return cls(config, data, optimizer)

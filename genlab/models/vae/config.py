"""Typed config of the VAE family: every key of ``configs/model/vae.yaml`` (except ``_target_``)."""

from __future__ import annotations

from dataclasses import dataclass

from genlab.errors import ConfigError

NETS = ("conv", "mlp", "resnet")
LIKELIHOODS = ("bernoulli", "gaussian")


@dataclass
class VAEConfig:
    # encoder/decoder pair: strided-conv / transposed-conv (conv), residual (resnet) or fully connected (mlp)
    net: str = "conv"
    latent_dim: int = 32
    # conv/resnet: channels of the first stage, doubled at each downsampling stage (capped at 8x)
    channels: int = 32
    # mlp: units in each of its two hidden layers
    hidden: int = 512
    # p(x|z): bernoulli (decoder logits; [0,1] images) or gaussian (decoder mean, std below)
    likelihood: str = "bernoulli"
    # gaussian likelihood: the fixed std, or the initial value of a learned scalar std when learn_std
    gaussian_std: float = 0.1
    learn_std: bool = False
    # dynamic binarization: x ~ Bernoulli(pixel intensity), resampled every training batch; validation
    # data is binarized with a fixed-seed generator so val numbers are stable across epochs
    binarize: bool = True
    # loss = recon NLL + beta_t * KL, beta_t = beta * min(1, step / kl_warmup_steps)
    beta: float = 1.0
    kl_warmup_steps: int = 0
    # free bits (nats per latent dim): the batch-mean KL of each dim is clamped below at this value in the loss
    free_bits: float = 0.0
    # max gradient L2 norm; 0 disables clipping
    grad_clip: float = 0.0
    # k of the importance-weighted NLL bound logged as val/iw_nll (k=1 is the ELBO), on the first
    # iw_examples validation examples (0 disables it)
    iw_samples: int = 100
    iw_examples: int = 1000
    channels_last: bool = False
    compile: bool = False
    # metric the checkpoint callback / early stopping / sweeps watch (lower is better)
    monitor: str = "val/neg_elbo"

    def __post_init__(self) -> None:
        if self.net not in NETS:
            raise ConfigError(f"model.net={self.net!r} is not known; allowed: {', '.join(NETS)}")
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(
                f"model.likelihood={self.likelihood!r} is not known; allowed: {', '.join(LIKELIHOODS)}"
            )
        positive_ints = {
            "latent_dim": self.latent_dim,
            "channels": self.channels,
            "hidden": self.hidden,
            "iw_samples": self.iw_samples,
        }
        for key, value in positive_ints.items():
            if int(value) < 1:
                raise ConfigError(f"model.{key}={value} must be a positive integer")
        if not self.gaussian_std > 0:
            raise ConfigError(
                f"model.gaussian_std={self.gaussian_std} must be > 0 (e.g. model.gaussian_std=0.1)"
            )
        if self.beta < 0:
            raise ConfigError(f"model.beta={self.beta} must be >= 0 (1.0 is the plain VAE)")
        non_negative = {
            "kl_warmup_steps": self.kl_warmup_steps,
            "free_bits": self.free_bits,
            "grad_clip": self.grad_clip,
            "iw_examples": self.iw_examples,
        }
        for key, value in non_negative.items():
            if value < 0:
                raise ConfigError(f"model.{key}={value} must be >= 0 (0 disables it)")
        if self.learn_std and self.likelihood != "gaussian":
            raise ConfigError("model.learn_std=true needs model.likelihood=gaussian")
        if self.binarize and self.likelihood != "bernoulli":
            raise ConfigError(
                "model.binarize=true needs model.likelihood=bernoulli; set model.binarize=false"
            )

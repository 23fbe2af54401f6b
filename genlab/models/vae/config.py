"""Typed config of the VAE family: every key of ``configs/model/vae.yaml`` (except ``_target_``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from genlab.config.schema import check_at_least, check_choice, check_positive, require

NETS = ("conv", "mlp", "resnet")
LIKELIHOODS = ("bernoulli", "gaussian")
PRIORS = ("standard", "vampprior")


@dataclass(frozen=True)
class VAEConfig:
    # encoder/decoder pair: strided-conv / transposed-conv (conv), residual (resnet) or fully connected (mlp)
    net: str = "conv"
    latent_dim: int = 32  # size of z
    # conv/resnet: channels of the first stage, doubled at each downsampling stage (capped at 8x)
    channels: int = 32
    # mlp: units in each of its two hidden layers
    hidden: int = 512
    # p(x|z): bernoulli (decoder logits; [0,1] images) or gaussian (decoder mean, std below)
    likelihood: str = "bernoulli"
    # gaussian likelihood: the fixed std, or the initial value of a learned scalar std when learn_std
    gaussian_std: float = 0.1
    learn_std: bool = False  # gaussian likelihood: learn one scalar std (starting at gaussian_std)
    # dynamic binarization: x ~ Bernoulli(pixel intensity), resampled every training batch; validation
    # data is binarized with a fixed-seed generator so val numbers are stable across epochs
    binarize: bool = True
    # loss = recon NLL + beta_t * KL, beta_t = beta * min(1, step / kl_warmup_steps)
    beta: float = 1.0
    kl_warmup_steps: int = 0  # steps of the linear KL warm-up of beta_t (0: off)
    # free bits (nats per latent dim): the batch-mean KL of each dim is clamped below at this value in the loss
    free_bits: float = 0.0
    # samples of z per image in the training objective: 1 = the ELBO, k > 1 = the IWAE bound with k samples
    # (Burda et al. 2016: tighter, more active units, a better test NLL; k times the decoder's cost)
    train_samples: int = 1
    # p(z): standard (N(0, I)) or vampprior (Tomczak & Welling 2018: a mixture of the encoder's posteriors at
    # pseudo_inputs learned pseudo-inputs; its KL is estimated from the z samples)
    prior: str = "standard"
    pseudo_inputs: int = 500  # vampprior: number of pseudo-inputs (mixture components)
    # max gradient L2 norm; 0 disables clipping
    grad_clip: float = 0.0
    # k of the importance-weighted NLL bound logged as val/iw_nll (k=1 is the ELBO), on the first
    # iw_examples validation examples (0 disables it)
    iw_samples: int = 100
    iw_examples: int = 1000  # validation examples val/iw_nll is computed on (0: off)
    # conditional VAE (Sohn et al. 2015; needs a labelled dataset): encoder q(z|x,y) and decoder p(x|z,y) read
    # the one-hot label; prior samples are drawn per class
    conditional: bool = False
    channels_last: bool = False  # channels-last memory format (GPU speed)
    compile: bool = False  # torch.compile encoder and decoder (GPU speed)
    # metric the checkpoint callback / early stopping / sweeps watch (lower is better)
    monitor: str = "val/neg_elbo"

    # what a resumed run cannot change: the networks and the likelihood they were trained for
    resume_fixed: ClassVar[tuple[str, ...]] = (
        "net",
        "latent_dim",
        "channels",
        "hidden",
        "likelihood",
        "learn_std",
        "binarize",
        "conditional",
        "prior",
        "pseudo_inputs",
    )

    def __post_init__(self) -> None:
        check_choice("model.net", self.net, NETS)
        check_choice("model.likelihood", self.likelihood, LIKELIHOODS)
        check_choice("model.prior", self.prior, PRIORS)
        for key in ("latent_dim", "channels", "hidden", "iw_samples", "pseudo_inputs"):
            check_at_least(f"model.{key}", getattr(self, key), 1, 32)
        check_at_least("model.train_samples", self.train_samples, 1, 5)
        check_positive("model.gaussian_std", self.gaussian_std, 0.1)
        check_at_least("model.beta", self.beta, 0, 1.0)
        for key in ("kl_warmup_steps", "free_bits", "grad_clip", "iw_examples"):
            check_at_least(f"model.{key}", getattr(self, key), 0, 0)
        require(
            self.train_samples == 1 or self.free_bits == 0,
            f"model.free_bits={self.free_bits} applies to the ELBO only; with model.train_samples="
            f"{self.train_samples} (the IWAE bound) set model.free_bits=0",
        )
        require(
            self.prior == "standard" or self.free_bits == 0,
            f"model.free_bits={self.free_bits} needs the per-dim KL of model.prior=standard; with "
            "model.prior=vampprior set model.free_bits=0",
        )
        require(
            self.prior == "standard" or not self.conditional,
            "model.prior=vampprior is for the unconditional VAE (its pseudo-inputs have no labels); "
            "set model.conditional=false or model.prior=standard",
        )
        require(
            not self.learn_std or self.likelihood == "gaussian",
            "model.learn_std=true needs model.likelihood=gaussian",
        )
        require(
            not self.binarize or self.likelihood == "bernoulli",
            "model.binarize=true needs model.likelihood=bernoulli; set model.binarize=false",
        )

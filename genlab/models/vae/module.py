"""Variational autoencoder (Kingma & Welling 2014) as a genlab model family.

Objective, per image, with q(z|x) = N(mu(x), diag sigma^2(x)) and prior p(z) = N(0, I):

    loss = E_q[-log p(x|z)] + beta_t * KL(q(z|x) || p(z))

- reconstruction NLL summed over pixels (one reparameterized sample of z), closed-form KL summed
  over latent dims, both averaged over the batch: nats per image;
- beta_t = beta * min(1, step / kl_warmup_steps) (beta-VAE, linear KL warm-up);
- free bits (training loss only): each latent dim's batch-mean KL is clamped below at free_bits nats;
- ``train_samples`` = k > 1 trains on the IWAE bound instead (Burda et al. 2016):
  loss = -log (1/k) sum_i p(x|z_i) [p(z_i) / q(z_i|x)]^beta_t, z_i ~ q(z|x), which tightens towards -log p(x)
  as k grows and lets the posterior be less exact; the logged recon and KL stay the ELBO's pieces (means over
  the k draws), and ``val/loss`` is the same objective as ``train/loss``.

On logging steps ``train/grad_norm`` (before clipping) is logged too, and the health monitor gets (:meth:`pop_health_signals`) the losses, the batch-mean KL of each
latent dim, the batch's active units and the gradient norm before clipping.

The negative ELBO (beta = 1, no free bits) is logged as ``*/neg_elbo`` whatever the training
weights are; ``val/iw_nll`` is the importance-weighted bound with k = iw_samples (k = 1 is the ELBO),
an estimate of the test NLL comparable with the literature when ``binarize`` is on.

VampPrior (``model.prior=vampprior``, Tomczak & Welling 2018): p(z) is the mixture of the encoder's posteriors at
``pseudo_inputs`` learned pseudo-inputs; the KL has no closed form, so ``kl`` is the estimate
log q(z|x) - log p(z) at the sampled z (its expectation is the KL), and prior samples draw a component first.

Conditional VAE (``model.conditional``, Sohn et al. 2015): q(z|x,y) and p(x|z,y) read the one-hot label y,
the prior stays N(0, I), so every term above is the same with y as an extra input (the likelihoods are
-log p(x|y)); prior samples are drawn per class.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.config.spec import DataSpec
from genlab.models.base import GenerativeModule
from genlab.models.capabilities import HealthSignals, LikelihoodModel, Reconstructor
from genlab.models.optim import OptimizerConfig
from genlab.models.vae import objective
from genlab.models.vae.config import VAEConfig
from genlab.models.vae.nets import IMAGE_SIZES, build_decoder, build_encoder
from genlab.models.vae.priors import VampPrior
from genlab.utils.errors import ConfigError

VAL_SEED = 2024  # fixed binarization and z samples for validation: comparable numbers across epochs
N_RECON = 32  # validation images kept for the reconstruction panel
TRAVERSAL_DIMS = 8
TRAVERSAL_STEPS = 9
IWAE_BATCH_K = 50  # importance samples decoded at once


@dataclass
class ElboTerms:
    """Per-example pieces of the objective for one batch."""

    log_px: Tensor  # (k, B) log p(x|z_i) of k samples z_i ~ q(z|x), nats
    z: Tensor  # (k, B, latent_dim) those samples
    mu: Tensor  # (B, latent_dim) posterior means
    logvar: Tensor  # (B, latent_dim) posterior log-variances
    log_prior: Callable[[Tensor], Tensor]  # z (..., latent_dim) -> log p(z) (...)
    # (B, latent_dim) closed-form KL(q(z|x) || N(0, I)) with the standard prior; None with the VampPrior
    kl_per_dim: Tensor | None

    @cached_property
    def log_ratio(self) -> Tensor:
        """(k, B) log p(z_i) - log q(z_i|x); computed only when the objective needs it."""
        return objective.log_prior_ratio(self.z, self.mu, self.logvar, self.log_prior)

    @property
    def recon(self) -> Tensor:
        """(B,) reconstruction NLL, averaged over the k samples."""
        return -self.log_px.mean(0)

    @property
    def kl(self) -> Tensor:
        """(B,) KL(q(z|x) || p(z)): closed form for the standard prior, else the estimate from the k samples."""
        if self.kl_per_dim is not None:
            return self.kl_per_dim.sum(1)
        return -self.log_ratio.mean(0)


class VAE(GenerativeModule, Reconstructor, LikelihoodModel, HealthSignals):
    config_class = VAEConfig
    family = "vae"

    def __init__(self, config: VAEConfig, data: DataSpec, optimizer: OptimizerConfig | None = None) -> None:
        super().__init__(config, data, optimizer)
        cfg: VAEConfig = self.config
        classes = int(self.spec.num_classes) if cfg.conditional else 0
        sizes = (cfg.net, self.spec, cfg.latent_dim, cfg.channels, cfg.hidden, classes)
        self.encoder = build_encoder(*sizes)
        self.decoder = build_decoder(*sizes)
        self.vamp = (
            VampPrior(cfg.pseudo_inputs, self.spec.shape, self.spec.value_range)
            if cfg.prior == "vampprior"
            else None
        )
        log_std = torch.tensor(math.log(cfg.gaussian_std))
        if cfg.learn_std:
            self.log_std = nn.Parameter(log_std)
        else:
            self.register_buffer("log_std", log_std)
        # the validation images behind the reconstruction panel; count 0 until the first validation
        shape = tuple(self.spec.shape)
        self.register_buffer("recon_inputs", torch.zeros(N_RECON, *shape))
        self.register_buffer("recon_count", torch.zeros((), dtype=torch.long))
        if cfg.conditional:
            self.register_buffer("recon_labels", torch.zeros(N_RECON, dtype=torch.long))
        self.val_active_units = objective.ActiveUnits(cfg.latent_dim)
        if cfg.channels_last and self.spec.is_image:
            self.to(memory_format=torch.channels_last)
        # compiled wrappers live outside the module tree so state_dict keys stay unprefixed
        self._nets = {"encoder": self.encoder, "decoder": self.decoder}
        if cfg.compile:
            self._nets = {name: torch.compile(net) for name, net in self._nets.items()}
        self._val_generator: torch.Generator | None = None
        self._iw_seen = 0
        self._health: dict[str, Tensor | float] | None = None

    # ---- config-time contract ----------------------------------------------------------------
    @classmethod
    def supported_image_sizes(cls, config) -> tuple[int, ...] | None:
        return IMAGE_SIZES[config.net]

    @classmethod
    def expected_value_range(cls, config) -> tuple[float, float] | None:
        return (0.0, 1.0)

    @classmethod
    def supports_vectors(cls, config) -> bool:
        return config.net == "mlp" and config.likelihood == "gaussian"

    @classmethod
    def vectors_hint(cls) -> str:
        return "use model.net=mlp model.likelihood=gaussian for the 2D datasets"

    # ---- the model ---------------------------------------------------------------------------
    def _prepare(self, x: Tensor) -> Tensor:
        if self.config.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def label_code(self, labels: Tensor | None, n: int, required: bool = True) -> Tensor | None:
        """The one-hot labels (n, num_classes) a conditional VAE's nets read; None when unconditional.

        Encoding and likelihoods need the data's labels (``required``); decoding without labels cycles through
        the classes (see :meth:`condition`)."""
        if not self.conditional:
            return None
        if labels is None:
            if required:
                raise ValueError("a conditional VAE needs the labels of the data it encodes or scores")
            labels = self.condition(None, n)
        return F.one_hot(labels.to(self.device, torch.long), int(self.spec.num_classes)).float()

    def _run(self, name: str, x: Tensor, code: Tensor | None) -> Tensor:
        net = self._nets[name]
        return net(x) if code is None else net(x, code)

    def encode(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Posterior parameters (mu, logvar), each (B, latent_dim)."""
        out = self._run("encoder", self._prepare(x), self.label_code(labels, len(x)))
        mu, logvar = out.chunk(2, dim=1)
        return mu, logvar

    def decoder_output(self, z: Tensor, labels: Tensor | None = None, required: bool = True) -> Tensor:
        """Raw decoder output: Bernoulli logits or the Gaussian mean, (B, *shape)."""
        return self._run("decoder", z, self.label_code(labels, len(z), required))

    def prior_components(self) -> tuple[Tensor, Tensor]:
        """The VampPrior's (mu_k, logvar_k), each (K, latent_dim): the posteriors of its pseudo-inputs."""
        return self.encode(self.vamp.inputs())

    def log_prior(self, z: Tensor) -> Tensor:
        """log p(z) for latents (..., latent_dim): the standard normal's or the VampPrior's."""
        if self.vamp is None:
            return objective.log_standard_normal(z)
        return objective.log_normal_mixture(z, *self.prior_components())

    def prior_latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws of z ~ p(z); a VampPrior picks a component uniformly, then draws from it."""
        if self.vamp is None:
            return super().prior_latents(n, generator)
        index = torch.randint(self.vamp.components, (n,), generator=generator).to(self.device)
        return self._vamp_latents(index, torch.randn(n, self.latent_dim, generator=generator).to(self.device))

    def fixed_latents(self) -> Tensor:
        """The fixed latent batch; with a VampPrior, its noise drawn from components 0, 1, 2, ... in turn."""
        if self.vamp is None:
            return self.fixed_z
        return self._vamp_latents(
            torch.arange(len(self.fixed_z), device=self.device) % self.vamp.components, self.fixed_z
        )

    @torch.no_grad()
    def _vamp_latents(self, index: Tensor, eps: Tensor) -> Tensor:
        return VampPrior.draw(*self.prior_components(), index, eps)

    def recon_nll(self, x: Tensor, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """-log p(x|z) (conditional: -log p(x|z,y)) per example, summed over pixels (nats)."""
        out = self.decoder_output(z, labels)
        if self.config.likelihood == "bernoulli":
            return objective.bernoulli_nll(out, x)
        return objective.gaussian_nll(out, x, self.log_std)

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Decoder mean in data space: Bernoulli probabilities, or the Gaussian mean (clamped for images)."""
        out = self.decoder_output(z, labels, required=False)
        if self.config.likelihood == "bernoulli":
            return torch.sigmoid(out)
        return out.clamp(0, 1) if self.spec.value_range is not None else out

    @torch.no_grad()
    def reconstruct(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """Decoder mean at the posterior mean: x -> E[x | z = mu(x)] (conditional: of x's label)."""
        if self.conditional and labels is None:
            raise ValueError("a conditional VAE reconstructs labelled images: pass their labels")
        return self.decode(self.encode(x, labels)[0], labels)

    def binarize(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """x ~ Bernoulli(x) when model.binarize is on (pass a seeded generator for a fixed binarization)."""
        if not self.config.binarize:
            return x
        return (torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) < x).to(x.dtype)

    def elbo_terms(
        self,
        x: Tensor,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
        samples: int = 1,
    ) -> ElboTerms:
        """Per-example log weights of ``samples`` draws of z and the KL pieces for a batch (and its labels,
        which only a conditional VAE reads)."""
        mu, logvar = self.encode(x, labels)
        eps = torch.randn((samples, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
        z, log_px = objective.sample_log_likelihoods(self, x, mu, logvar, eps, labels)
        kl_per_dim = objective.gaussian_kl(mu, logvar) if self.vamp is None else None
        return ElboTerms(log_px, z, mu, logvar, self.log_prior, kl_per_dim)

    def _losses(self, terms: ElboTerms) -> dict[str, Tensor | float]:
        cfg = self.config
        beta_t = objective.kl_weight(self.global_step, cfg.beta, cfg.kl_warmup_steps)
        recon, kl = terms.recon.mean(), terms.kl.mean()
        if len(terms.log_px) > 1:  # the IWAE objective: its KL part is inside the importance weights
            loss = objective.iwae_bound(terms.log_px, terms.log_ratio, beta_t).mean()
        else:
            kl_loss = objective.free_bits_kl(terms.kl_per_dim, cfg.free_bits) if cfg.free_bits > 0 else kl
            loss = recon + beta_t * kl_loss
        return {
            "loss": loss,
            "recon": recon,
            "kl": kl,
            "neg_elbo": recon + kl,
            "beta": beta_t,  # a float: no host-to-device copy per step
        }

    # ---- training ----------------------------------------------------------------------------
    def training_step(self, batch, batch_idx: int) -> Tensor:
        x = self.binarize(batch[0])
        terms = self.elbo_terms(x, labels=batch[1], samples=self.config.train_samples)
        losses = self._losses(terms)
        self.log("train/loss", losses["loss"], prog_bar=True)
        if self.is_logging_step():
            self.log_dict({f"train/{k}": v for k, v in losses.items() if k != "loss"})
            self._health = {
                **{k: v.detach() if isinstance(v, Tensor) else v for k, v in losses.items()},
                "active_units": objective.active_units(terms.mu.detach()),
            }
            if terms.kl_per_dim is not None:  # the posterior-collapse detector reads it
                self._health["kl_per_dim"] = terms.kl_per_dim.detach().mean(0)
        return losses["loss"]

    def on_before_optimizer_step(self, optimizer) -> None:
        """``train/grad_norm``, before clipping (logging steps only)."""
        if self._health is None or not self.is_logging_step():
            return
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if grads:
            norm = torch.nn.utils.get_total_norm(grads).detach()
            self.log("train/grad_norm", norm)
            self._health["grad_norm"] = norm

    def configure_gradient_clipping(
        self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None
    ) -> None:
        if self.config.grad_clip > 0:
            if gradient_clip_val:
                raise ConfigError(
                    f"both model.grad_clip={self.config.grad_clip} and trainer.gradient_clip_val={gradient_clip_val} "
                    "are set; keep only model.grad_clip"
                )
            gradient_clip_val, gradient_clip_algorithm = self.config.grad_clip, "norm"
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    # ---- validation --------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._val_generator = torch.Generator(device=self.device).manual_seed(VAL_SEED)
        self._iw_seen = 0

    def validation_step(self, batch, batch_idx: int) -> None:
        g = self._val_generator
        x, labels = self.binarize(batch[0], generator=g), batch[1]
        terms = self.elbo_terms(x, generator=g, labels=labels, samples=self.config.train_samples)
        n = len(x)
        for name, value in self._losses(terms).items():
            if name != "beta":
                self.log(f"val/{name}", value, batch_size=n, sync_dist=True)
        self.val_active_units.update(terms.mu)
        self.log("val/active_units", self.val_active_units)
        self._log_iw_nll(x, g, labels)
        if batch_idx == 0 and self.recon_count == 0 and self.spec.is_image:
            keep = min(N_RECON, n)
            self.recon_inputs[:keep] = x[:keep]
            if self.conditional:
                self.recon_labels[:keep] = labels[:keep]
            self.recon_count.fill_(keep)

    def _log_iw_nll(self, x: Tensor, generator: torch.Generator, labels: Tensor) -> None:
        take = min(len(x), self.config.iw_examples - self._iw_seen)
        if take <= 0:
            return
        self._iw_seen += take
        iw = objective.iwae_nll(
            self,
            x[:take],
            self.config.iw_samples,
            batch_k=IWAE_BATCH_K,
            generator=generator,
            labels=labels[:take],
        )
        self.log("val/iw_nll", iw.mean(), batch_size=take, sync_dist=True)

    # ---- images ------------------------------------------------------------------------------
    @torch.no_grad()
    def traversal_grid(self, dims: int = TRAVERSAL_DIMS, steps: int = TRAVERSAL_STEPS) -> Tensor:
        """Row j varies latent dim j over [-3, 3] around the first fixed z: ``dims * steps`` images (class 0
        for a conditional VAE)."""
        dims = min(dims, self.latent_dim)
        z = self.fixed_latents()[0].repeat(dims, steps, 1)  # (dims, steps, D)
        values = torch.linspace(-3, 3, steps, device=z.device)
        rows = torch.arange(dims, device=z.device)
        z[rows, :, rows] = values
        labels = self.condition(torch.zeros(dims * steps, dtype=torch.long), dims * steps)
        return self.to_unit(self.decode(z.reshape(dims * steps, -1), labels))

    @torch.no_grad()
    def image_panels(self) -> dict[str, tuple[Tensor, int]]:
        panels = super().image_panels()
        panels["traversal"] = (self.traversal_grid(), TRAVERSAL_STEPS)
        count = int(self.recon_count)
        if count:
            x = self.recon_inputs[:count]
            labels = self.recon_labels[:count] if self.conditional else None
            pairs = torch.stack([self.to_unit(x), self.to_unit(self.reconstruct(x, labels))], dim=1)
            panels["reconstructions"] = (pairs.flatten(0, 1), 16)  # input, reconstruction, input, ...
        return panels

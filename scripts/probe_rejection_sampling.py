"""Does discriminator rejection sampling (Azadi et al. 2019) rebalance the classes of an unconditional GAN?

Draws samples from a trained GAN checkpoint, reads their classes with a genlab classifier and prints the
class-histogram KL to the real data's histogram: for the raw samples, for the samples kept with probability
exp(D(x) - max D) (rejection sampling with D's logit as the log density ratio; max D is the 99.9th percentile
so one outlier does not decide the acceptance rate), and for a copy of D fine-tuned against the sampling
generator (the paper's calibration step), every 250 of its steps. README Results quotes it for
`experiment=mnist_gan`:

    python scripts/probe_rejection_sampling.py <mnist_gan run>/checkpoints/last.ckpt \\
        <mnist_classifier run>/checkpoints/last.ckpt --data-dir <dir holding MNIST/raw>
"""

from __future__ import annotations

import argparse
import copy

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.checkpoint import load_run
from genlab.metrics.classifier_stats import class_histogram, kl_divergence
from genlab.metrics.features import ClassifierFeatures

CHUNK = 500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gan_ckpt")
    parser.add_argument("classifier_ckpt")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--calibration-steps", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=2e-4)
    args = parser.parse_args()
    torch.set_num_threads(1)

    loaded = load_run(args.gan_ckpt, data_dir=args.data_dir)
    model, record = loaded.model.eval(), loaded.record
    if model.family != "gan" or model.conditional or model.config.pack > 1:
        parser.error(
            f"{args.gan_ckpt}: pass an unconditional, unpacked GAN checkpoint (D here reads one sample)"
        )
    dm = record.dataset_class(record.dataset, record.data)
    real, real_labels = dm.real_labelled(20000, split="train", generator=torch.Generator().manual_seed(1))
    classifier = load_run(args.classifier_ckpt, key="classifier_ckpt").model
    reader = ClassifierFeatures(classifier, model.spec.channels)
    data_hist = class_histogram(real_labels, reader.classifier.num_classes)

    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        x = torch.cat(
            [model.sample(min(CHUNK, args.samples - s), generator=g) for s in range(0, args.samples, CHUNK)]
        )
        classes = torch.cat([reader(model.to_unit(b))[1].flatten(1).argmax(1) for b in x.split(CHUNK)])

    def report(name: str, keep: Tensor) -> None:
        hist = class_histogram(classes[keep], len(data_hist))
        shares = " ".join(f"{100 * v:.0f}" for v in hist.tolist())
        print(
            f"{name:<28} kept {keep.float().mean():6.1%}  KL {kl_divergence(hist, data_hist):.4f}  % per class: {shares}"
        )

    def rejection(d: torch.nn.Module) -> Tensor:
        d.eval()
        with torch.no_grad():
            logits = torch.cat([d(b).flatten() for b in x.split(64)])
        accept = torch.exp((logits - torch.quantile(logits, 0.999)).clamp(max=0))
        return torch.rand(len(accept), generator=torch.Generator().manual_seed(5)) < accept

    report("raw samples", torch.ones(len(x), dtype=torch.bool))
    report("D as trained", rejection(model.discriminator))
    d = copy.deepcopy(model.discriminator).train()
    opt = torch.optim.Adam(d.parameters(), lr=args.lr, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(3)
    for step in range(1, args.calibration_steps + 1):
        batch = real[torch.randint(0, len(real), (64,), generator=g)]
        with torch.no_grad():
            fake = model.sample(64, generator=g)
        loss = F.softplus(-d(batch)).mean() + F.softplus(d(fake)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 250 == 0:
            report(f"D calibrated {step} steps", rejection(d))
            d.train()


if __name__ == "__main__":
    main()

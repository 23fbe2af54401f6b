"""``evaluate(cfg) -> dict``: `genlab eval ckpt=<file>` as a plain function.

Loads the checkpoint, rebuilds the run's dataset for the real reference samples, computes the
configured metrics (:mod:`genlab.metrics.suite`), prints a table and writes ``eval.json`` beside the
checkpoint (or to ``out``). The report records the checkpoint, the number of samples, the reference
split and the feature extractor next to every metric. Metrics whose features cannot be had offline (no
Inception weights found) are skipped, one line each with the reason, as long as another metric is left;
each step logs when it starts and ends, long loops a progress line with the time left.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from genlab.checkpoint import load_run, pick_device
from genlab.config.schema import (
    check_at_least,
    check_choice,
    check_seed,
    command_config,
    require,
    set_field,
)
from genlab.metrics.features import FEATURE_EXTRACTORS
from genlab.metrics.suite import EvalPlan
from genlab.models.capabilities import Sampler
from genlab.utils.atomic import check_writable, write_text_atomic
from genlab.utils.errors import ConfigError
from genlab.utils.progress import Phases
from genlab.utils.resources import require_memory
from genlab.utils.threads import use_threads

log = logging.getLogger("genlab")


@dataclass(frozen=True)
class EvalConfig:
    """The ``eval:`` node of ``configs/eval.yaml``."""

    # generated samples; null: 10000 for images, 2500 for 2D data, 26000 for stacked_mnist
    n_samples: int | None = None
    # real reference split of the run's dataset
    split: str = "test"
    # inception | classifier; null: classifier when classifier_ckpt is set, else inception
    features: str | None = None
    # a `genlab train model=classifier` checkpoint: its features replace Inception's (MNIST-like data)
    classifier_ckpt: str | None = None
    # local torch-fidelity weights-inception-2015-12-05-6726825d.pth (else $GENLAB_INCEPTION_WEIGHTS, torch hub)
    inception_weights: str | None = None
    # "auto" (by data kind and model family) or a list of: fid, kid, is, prdc, class_kl, modes, likelihood,
    # conditional_accuracy, intra_fid (class-conditional models)
    metrics: Any = "auto"
    batch_size: int = 250  # samples per forward pass
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    seed: int = 0  # same seed, same samples and same numbers
    # k of the importance-weighted NLL bound (VAE)
    iw_samples: int = 100
    # where the run's dataset is read from (null: $GENLAB_DATA_DIR or data/), never the directory stored in
    # the checkpoint
    data_dir: str | None = None

    def __post_init__(self) -> None:
        if self.n_samples is not None:
            check_at_least("eval.n_samples", self.n_samples, 6, 10000)
        if self.features is not None:
            check_choice("eval.features", self.features, FEATURE_EXTRACTORS)
        check_at_least("eval.batch_size", self.batch_size, 1, 250)
        check_at_least("eval.iw_samples", self.iw_samples, 1, 100)
        check_choice("eval.split", self.split, ("train", "test", "val"))
        check_seed("eval.seed", self.seed, 0)
        if isinstance(self.metrics, str) and self.metrics != "auto":
            set_field(self, "metrics", [m.strip() for m in self.metrics.split(",") if m.strip()])
        require(
            self.metrics == "auto"
            or (
                isinstance(self.metrics, list)
                and self.metrics
                and all(isinstance(m, str) for m in self.metrics)
            ),
            f"eval.metrics={self.metrics!r} must be auto or a non-empty list of metric names",
        )

    def torch_device(self) -> torch.device:
        return pick_device(self.device, key="eval.device")


@dataclass(frozen=True)
class EvalCommand:
    """The keys of ``configs/eval.yaml``."""

    ckpt: str | None = None  # a checkpoint written by genlab train (required)
    # report file; null: eval.json beside the checkpoint
    out: str | None = None
    # CPU threads for torch (null: the cores free when the command starts)
    threads: int | None = None
    eval: EvalConfig = field(default_factory=EvalConfig)
    task: str = "eval"

    def __post_init__(self) -> None:
        require(bool(self.ckpt), "ckpt is required: genlab eval ckpt=<run dir>/checkpoints/last.ckpt")
        require(self.out is None or bool(self.out.strip()), "out is empty; pass a file name or null")
        if self.threads is not None:
            check_at_least("threads", self.threads, 1, 1)

    @property
    def report_path(self) -> Path:
        return Path(self.out) if self.out else Path(self.ckpt).parent / "eval.json"


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``cfg.ckpt``; return the report written to ``eval.json``."""
    command = command_config(EvalCommand, cfg)
    use_threads(command.threads)
    ecfg = command.eval
    device = ecfg.torch_device()
    out = command.report_path
    check_writable(out, "out")
    loaded = load_run(command.ckpt, device=device, data_dir=ecfg.data_dir)
    model, run = loaded.model, loaded.record
    if not isinstance(model, Sampler):
        raise ConfigError(
            f"{command.ckpt} is a {model.family}; evaluate a generator checkpoint and pass this one as "
            "eval.classifier_ckpt"
        )
    if ecfg.n_samples is not None:  # generated and real samples are held in memory at once
        require_memory(
            2 * ecfg.n_samples * run.data.dim * 4, f"eval.n_samples={ecfg.n_samples}", "lower eval.n_samples"
        )
    plan = EvalPlan.build(
        model,
        run.dataset_class(run.dataset, run.data),
        ecfg.metrics,
        ecfg.features,
        ecfg.classifier_ckpt,
        ecfg.inception_weights,
        ecfg.n_samples,
        ecfg.split,
        ecfg.batch_size,
        ecfg.seed,
        ecfg.iw_samples,
        device=device,
        partial=True,
    )
    skipped = [name for names in plan.skipped.values() for name in names]
    log.info(
        "evaluating %s: %s%d real (%s split), metrics %s%s",
        command.ckpt,
        f"{plan.generated} generated samples vs " if plan.generated else "",
        len(plan.reference.samples),
        ecfg.split,
        ", ".join(plan.names),
        f" (skipped: {', '.join(skipped)}; why at the end)" if skipped else "",
    )
    results = plan.run(model, Phases("eval"))
    report = {
        "checkpoint": str(Path(command.ckpt).resolve()),
        "model": model.family,
        "dataset": model.spec.name,
        "n_samples": plan.generated,
        "n_reference": len(plan.reference.samples),
        "split": ecfg.split,
        "features": plan.features,
        "metrics": results,
        "skipped": {name: reason for reason, names in plan.skipped.items() for name in names},
        "config": asdict(ecfg),
    }
    write_text_atomic(out, json.dumps(report, indent=2))
    print(format_table(report))
    for reason, names in plan.skipped.items():
        log.warning("eval: skipped %s: %s", ", ".join(names), reason)
    print(f"wrote {out}")
    report["out"] = str(out)
    return report


def format_table(report: dict[str, Any]) -> str:
    """The scalar metrics of a report as an aligned two-column table."""
    real = f"{report['n_reference']} {report['split']} samples"
    head = f"{report['model']} on {report['dataset']}: " + (
        f"{report['n_samples']} samples vs {real}" if report["n_samples"] else real
    )
    head += f", features: {report['features']}" if report["features"] else ""
    rows = [(k, v) for k, v in report["metrics"].items() if isinstance(v, int | float)]
    width = max((len(k) for k, _ in rows), default=6)
    lines = [head, f"{'metric':<{width}}  value", f"{'-' * width}  {'-' * 12}"]
    lines += [f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)

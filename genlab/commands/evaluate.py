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
from genlab.config.schema import check_at_least, command_config, require
from genlab.metrics.request import EvalRequest
from genlab.metrics.suite import EvalPlan
from genlab.models.capabilities import Sampler
from genlab.run.callbacks.eval_metrics import load_classifier
from genlab.utils.atomic import check_writable, write_text_atomic
from genlab.utils.errors import ConfigError
from genlab.utils.progress import Phases
from genlab.utils.threads import use_threads

log = logging.getLogger("genlab")


@dataclass(frozen=True)
class EvalConfig(EvalRequest):
    """The ``eval:`` node of ``configs/eval.yaml``: the evaluation request plus `genlab eval`'s own keys."""

    KEY = "eval"

    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # k of the importance-weighted NLL bound (VAE)
    iw_samples: int = 100
    # where the run's dataset is read from (null: $GENLAB_DATA_DIR or data/), never the directory stored in
    # the checkpoint
    data_dir: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_at_least(self.key("iw_samples"), self.iw_samples, 1, 100)

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
    resolved = ecfg.resolve(model, partial=True)  # defaults filled in and memory checked: nothing drawn yet
    classifier = load_classifier(resolved, device)
    datamodule = run.dataset_class(run.dataset, run.data)
    plan = EvalPlan.build(resolved, model, datamodule, device, classifier, ecfg.iw_samples)
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

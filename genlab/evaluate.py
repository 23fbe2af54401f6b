"""``evaluate(cfg) -> dict``: `genlab eval ckpt=<file>` as a plain function.

Loads the checkpoint, rebuilds the run's dataset for the real reference samples, computes the
configured metrics (:mod:`genlab.metrics.suite`), prints a table and writes ``eval.json`` beside the
checkpoint (or to ``out``). The report records the checkpoint, the number of samples, the reference
split and the feature extractor next to every metric.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from genlab.checkpoint import load_model, pick_device
from genlab.errors import ConfigError
from genlab.metrics.features import FEATURE_EXTRACTORS, build_extractor
from genlab.metrics.suite import (
    DEFAULT_SAMPLES,
    Reference,
    auto_metrics,
    check_metrics,
    compute_metrics,
    data_kind,
    default_features,
    needs_features,
)

log = logging.getLogger("genlab")


@dataclass
class EvalConfig:
    """The ``eval:`` node of ``configs/eval.yaml``."""

    # generated samples; null: 10000 for images, 2500 for 2D data, 26000 for stacked_mnist
    n_samples: int | None = None
    # real reference split of the run's dataset
    split: str = "test"
    # inception | classifier; null: classifier when classifier_ckpt is set, else inception
    features: str | None = None
    classifier_ckpt: str | None = None
    inception_weights: str | None = None
    # "auto" (by data kind and model family) or a list of: fid, kid, is, prdc, class_kl, modes, likelihood
    metrics: Any = "auto"
    batch_size: int = 250
    device: str = "auto"
    seed: int = 0
    # k of the importance-weighted NLL bound (VAE)
    iw_samples: int = 100
    # where the run's dataset is read from; null: the data_dir stored in the run config
    data_dir: str | None = None

    def __post_init__(self) -> None:
        if self.n_samples is not None and self.n_samples < 6:
            raise ConfigError(
                f"eval.n_samples={self.n_samples} must be >= 6 (the k-NN metrics use k=5), or null for the default"
            )
        if self.features is not None and self.features not in FEATURE_EXTRACTORS:
            raise ConfigError(
                f"eval.features={self.features!r} is not known; allowed: {', '.join(FEATURE_EXTRACTORS)}"
            )
        if self.batch_size < 1 or self.iw_samples < 1:
            raise ConfigError(
                f"eval.batch_size={self.batch_size} and eval.iw_samples={self.iw_samples} must be >= 1"
            )
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"eval.device={self.device!r} is not known; allowed: auto, cpu, cuda")
        if isinstance(self.metrics, str) and self.metrics != "auto":
            self.metrics = [m.strip() for m in self.metrics.split(",") if m.strip()]

    @classmethod
    def from_node(cls, node: DictConfig | dict | None) -> EvalConfig:
        data = (
            OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node or {})
        )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"eval.{unknown[0]} is not a known key; allowed keys: {', '.join(sorted(known))}"
            )
        return cls(**data)

    @property
    def resolved_features(self) -> str:
        return default_features(self.features, self.classifier_ckpt)

    def torch_device(self) -> torch.device:
        return pick_device(self.device, key="eval.device")


def build_reference(run_dataset: dict, split: str, n: int, data_dir: str | None, seed: int) -> Reference:
    """Real samples of the run's dataset (at most the split's size for finite datasets)."""
    ds_cfg = dict(run_dataset)
    if data_dir:
        ds_cfg["data_dir"] = data_dir
    return Reference.from_datamodule(instantiate(ds_cfg, _convert_="all"), split, n, seed)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``cfg.ckpt``; return the report written to ``eval.json``."""
    ecfg = EvalConfig.from_node(cfg.get("eval"))
    ckpt = cfg.get("ckpt")
    if not ckpt:
        raise ConfigError("ckpt is required: genlab eval ckpt=<run dir>/checkpoints/last.ckpt")
    device = ecfg.torch_device()
    model = load_model(ckpt, device=device)
    if model.family == "classifier":
        raise ConfigError(
            f"{ckpt} is a classifier; evaluate a generator checkpoint and pass this one as eval.classifier_ckpt"
        )
    run = getattr(model, "run_config", None) or {}
    if "dataset" not in run:
        raise ConfigError(f"{ckpt} stores no dataset config; evaluate a checkpoint written by `genlab train`")

    kind = data_kind(model.spec)
    n_samples = ecfg.n_samples or DEFAULT_SAMPLES[kind]
    names = auto_metrics(model, ecfg.resolved_features) if ecfg.metrics == "auto" else list(ecfg.metrics)
    features = ecfg.resolved_features if needs_features(names, model) else None
    check_metrics(names, model, features)
    extractor = None
    if features is not None:
        extractor = build_extractor(
            features, model.spec.channels, ecfg.classifier_ckpt, ecfg.inception_weights, device
        )

    reference = build_reference(run["dataset"], ecfg.split, n_samples, ecfg.data_dir, ecfg.seed)
    log.info(
        "evaluating %s: %d samples vs %d real (%s split), metrics %s",
        ckpt,
        n_samples,
        len(reference.samples),
        ecfg.split,
        ", ".join(names),
    )
    results = compute_metrics(
        model, reference, names, n_samples, extractor, ecfg.batch_size, ecfg.seed, ecfg.iw_samples
    )

    report = {
        "checkpoint": str(Path(ckpt).resolve()),
        "model": model.family,
        "dataset": model.spec.name,
        "n_samples": n_samples,
        "n_reference": len(reference.samples),
        "split": ecfg.split,
        "features": features,
        "metrics": results,
        "config": asdict(ecfg),
    }
    out = Path(cfg.get("out") or Path(ckpt).parent / "eval.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(format_table(report))
    print(f"wrote {out}")
    report["out"] = str(out)
    return report


def format_table(report: dict[str, Any]) -> str:
    """The scalar metrics of a report as an aligned two-column table."""
    head = (
        f"{report['model']} on {report['dataset']}: {report['n_samples']} samples vs {report['n_reference']} "
        f"{report['split']} samples" + (f", features: {report['features']}" if report["features"] else "")
    )
    rows = [(k, v) for k, v in report["metrics"].items() if isinstance(v, int | float)]
    width = max((len(k) for k, _ in rows), default=6)
    lines = [head, f"{'metric':<{width}}  value", f"{'-' * width}  {'-' * 12}"]
    lines += [f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)

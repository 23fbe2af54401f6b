"""The one evaluation request behind `genlab eval` and ``callbacks.eval_metrics``, and the metric catalogue that
validates it, picks ``auto`` metrics and fills in the default sample count."""

from __future__ import annotations

import dataclasses

import pytest
from builders import build
from runs_util import RING_GAN, run_cli

from genlab.commands.evaluate import EvalConfig
from genlab.config.schema import build_typed
from genlab.data.synthetic import GaussianMixtureDataModule
from genlab.metrics import catalogue
from genlab.metrics.request import EvalRequest
from genlab.run.callbacks.eval_metrics import EvalMetricsConfig
from genlab.utils import resources
from genlab.utils.errors import ConfigError

BOUNDS = [
    ("n_samples", 3),
    ("batch_size", 0),
    ("split", "valid"),
    ("seed", -1),
    ("features", "nosuch"),
    ("metrics", ["fid", "nosuch"]),
    ("metrics", []),
]


def error(schema, prefix: str, key: str, value) -> str:
    with pytest.raises(ConfigError) as info:
        build_typed(schema, {key: value}, prefix)
    return str(info.value)


@pytest.mark.parametrize(("key", "value"), BOUNDS)
def test_both_configs_refuse_a_bad_value_with_the_same_message(key, value):
    eval_message = error(EvalConfig, "eval", key, value)
    callback_message = error(EvalMetricsConfig, "callbacks.eval_metrics", key, value)
    assert eval_message.startswith(f"eval.{key}")
    assert callback_message == eval_message.replace("eval.", "callbacks.eval_metrics.")


def test_the_same_bound_through_both_commands(capsys, tmp_path):
    code, _, err = run_cli(capsys, "eval", f"ckpt={tmp_path}/none.ckpt", "eval.n_samples=3")
    assert code == 2 and err.count("\n") == 1
    eval_message = err.split("error: ", 1)[1].strip()
    code, _, err = run_cli(
        capsys,
        "train",
        f"hydra.run.dir={tmp_path / 'run'}",
        *RING_GAN,
        "callbacks=eval",
        "callbacks.eval_metrics.n_samples=3",
    )
    assert code == 2 and err.count("\n") == 1
    assert err.split("error: ", 1)[1].strip() == eval_message.replace("eval.", "callbacks.eval_metrics.")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_unknown_metrics_are_refused_listing_the_catalogue():
    message = error(EvalConfig, "eval", "metrics", ["fid", "precision"])
    assert message == (
        f"eval.metrics: 'precision' is not known; allowed: {', '.join(catalogue.CATALOGUE)} (or auto)"
    )


def test_the_shared_keys_live_in_the_request_only():
    def names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    shared = names(EvalRequest)
    assert shared == {
        "metrics",
        "n_samples",
        "features",
        "classifier_ckpt",
        "inception_weights",
        "split",
        "batch_size",
        "seed",
    }
    assert names(EvalConfig) - shared == {"device", "iw_samples", "data_dir"}
    assert names(EvalMetricsConfig) - shared == {"every_n_validations"}


def test_every_direction_the_report_ranks_by_comes_from_the_catalogue():
    assert catalogue.direction("val/conditional_accuracy") == "max"
    assert catalogue.direction("eval/intra_fid") == "min"
    assert catalogue.direction("val/hq_fraction") == "max" and catalogue.direction("val/acc") == "max"
    assert catalogue.direction("val/num_modes") is None  # a count ranks nothing
    assert catalogue.direction("val/nll") is None  # not a key genlab produces
    for metric in catalogue.CATALOGUE.values():
        assert metric.keys and set(metric.samples) == set(catalogue.KINDS), metric.name


class Ring2D:
    """A stand-in GAN on the ring: what the request reads from a model."""

    family = "gan"
    conditional = False

    def __init__(self) -> None:
        self.spec = build(GaussianMixtureDataModule, name="ring").spec


def test_resolving_fills_in_the_defaults_and_checks_memory_on_them(monkeypatch):
    model = Ring2D()
    resolved = EvalRequest().resolve(model)
    assert (resolved.names, resolved.features, resolved.n_samples) == (("modes",), None, 2500)
    monkeypatch.setattr(resources, "available_memory", lambda: 2 * 2500 * 2 * 4 - 1)
    with pytest.raises(
        ConfigError, match=r"^eval\.n_samples=2500 \(the default for vector data\) needs about"
    ):
        EvalRequest().resolve(model)
    assert EvalRequest(n_samples=2000).resolve(model).n_samples == 2000  # what fits passes
    with pytest.raises(ConfigError, match="fid needs images but ring is 2D"):
        EvalMetricsConfig(metrics=["fid"]).resolve(model)

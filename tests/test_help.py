"""`genlab <command> --help`: each command's own keys, each with its meaning from the typed configs."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from omegaconf import OmegaConf
from runs_util import run_cli

from genlab.commands.compose import compose_config
from genlab.commands.help import field_help, key_rows

DATASETS = [
    "mnist",
    "fashion_mnist",
    "cifar10",
    "celeba",
    "folder",
    "stacked_mnist",
    "ring",
    "grid",
    "shapes",
]
COMPOSITIONS = [
    ("train", []),
    ("train", ["model=vae"]),
    ("train", ["model=classifier"]),
    ("train", ["logger=many", "callbacks=eval"]),
    *[("train", [f"dataset={name}"]) for name in DATASETS],
    ("sample", ["ckpt=x"]),
    ("eval", ["ckpt=x"]),
]


def rows(line: str) -> list[str]:
    return line.split()


def key_line(out: str, key: str) -> str:
    (line,) = [ln for ln in out.splitlines() if ln.split()[:1] == [key]]
    return line


def test_sample_help_shows_its_own_keys_and_examples(capsys):
    code, out, _ = run_cli(capsys, "sample", "--help")
    assert code == 0
    assert "number of samples" in key_line(out, "n")
    assert "required" in key_line(out, "ckpt") and "checkpoint written by genlab train" in key_line(
        out, "ckpt"
    )
    for key in ("out", "seed", "mode", "nrow", "split", "device"):
        assert len(key_line(out, key).split()) > 2, key  # key, value, and a meaning
    assert "genlab sample ckpt=" in out
    for train_only in (
        "Config groups",
        "dataset:",
        "model.",
        "trainer.",
        "optimizer",
        "genlab train -m",
        "task",
    ):
        assert train_only not in out, train_only


def test_eval_help_shows_its_own_keys_and_examples(capsys):
    code, out, _ = run_cli(capsys, "eval", "--help")
    assert code == 0
    assert "generated samples" in key_line(out, "eval.n_samples")
    assert "importance-weighted" in key_line(out, "eval.iw_samples")
    assert "skipped" in out  # what happens offline
    assert "genlab eval ckpt=" in out
    for train_only in (
        "Config groups",
        "dataset:",
        "model.",
        "trainer.",
        "genlab train -m",
        "genlab sample ckpt",
    ):
        assert train_only not in out, train_only


def test_train_help_explains_the_keys_of_the_chosen_options(capsys):
    code, out, _ = run_cli(capsys, "train", "--help")
    assert code == 0
    assert "size of the noise vector z" in key_line(out, "model.latent_dim")
    assert "Stop training after this number of steps" in key_line(out, "trainer.max_steps")
    assert "genlab train -m" in out and "genlab eval ckpt" not in out
    code, out, _ = run_cli(capsys, "train", "model=vae", "--help")
    assert code == 0
    assert "beta_t" in key_line(out, "model.beta")
    assert not [ln for ln in out.splitlines() if ln.split()[:1] == ["model.g_width"]]


@pytest.mark.parametrize(("command", "overrides"), COMPOSITIONS, ids=lambda v: " ".join(v) if v else "-")
def test_every_key_has_a_meaning(command, overrides):
    cfg = OmegaConf.to_container(compose_config(command, overrides), resolve=False)
    missing = [key for _, key, _, meaning in key_rows(command, cfg) if not meaning]
    assert not missing, f"add a comment (or help metadata) to the typed config fields of: {missing}"


@dataclass(frozen=True)
class Base:
    # the comment above
    # spans two lines
    a: int = 1
    b: int = 2  # a trailing comment
    c: str = field(default="x", metadata={"help": "from metadata"})  # not this


@dataclass(frozen=True)
class Child(Base):
    b: int = 3  # the subclass's own words
    a: int = 4


def test_meanings_come_from_metadata_then_comments_of_the_class_and_its_bases():
    assert field_help(Base, "a") == "the comment above spans two lines"
    assert field_help(Base, "b") == "a trailing comment"
    assert field_help(Base, "c") == "from metadata"
    assert field_help(Child, "b") == "the subclass's own words"
    assert field_help(Child, "a") == "the comment above spans two lines"

"""Metrics receive built networks and never load checkpoints; models do not evaluate themselves (the import-linter
layers of pyproject.toml, checked here for these two edges whatever else the contract reports)."""

from __future__ import annotations

import grimp
import pytest


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("genlab", cache_dir=None)


def test_metrics_never_reach_the_checkpoint_loader(graph):
    assert graph.find_shortest_chain("genlab.metrics", "genlab.checkpoint", as_packages=True) is None


def test_models_never_import_the_metrics(graph):
    assert graph.find_shortest_chain("genlab.models", "genlab.metrics", as_packages=True) is None

"""The import-linter contracts of pyproject.toml hold for genlab, and catch an import that goes up a layer."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.exists(), reason="import-linter is not installed (pip install -e .[dev])"
)


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_package(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "genlab", root / "genlab", ignore=shutil.ignore_patterns("__pycache__", "configs"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_package_keeps_its_layers():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout[-2000:]


@pytest.mark.parametrize(
    ("module", "back_import", "broken"),
    [
        (
            "genlab/config/schema.py",
            "import genlab.run.callbacks",
            "genlab.config is not allowed to import genlab.run",
        ),
        (
            "genlab/metrics/fid.py",
            "import genlab.checkpoint",
            "genlab.metrics is not allowed to import genlab.checkpoint",
        ),
        (
            "genlab/utils/atomic.py",
            "import genlab.commands.clean",
            "genlab.utils is not allowed to import genlab.commands",
        ),
    ],
)
def test_an_import_up_a_layer_breaks_the_contract(tmp_path, module, back_import, broken):
    root = copy_package(tmp_path)
    path = root / module
    path.write_text(path.read_text() + f"\n{back_import}  # noqa\n")
    result = lint_imports(root)
    assert result.returncode != 0
    assert broken in " ".join(result.stdout.split()), result.stdout[-2000:]

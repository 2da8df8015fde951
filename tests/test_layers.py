"""The layers of ARCHITECTURE.md: the import-linter contracts in pyproject.toml hold, and a back-arrow breaks
them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("study", "search_spaces", "trainables", "analysis")

pytest.importorskip("importlinter")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_layers_hold():
    proc = lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.parametrize(("module", "back_arrow", "contract"), [
    ("analysis/core/registry.py", "import analysis.results", "analysis.core is the bottom"),
    ("trainables/loop.py", "import search_spaces.study_file", "the packages are layers"),
    ("search_spaces/space.py", "import search_spaces.study_file", "no cycles between the modules"),
    ("study/sinks/mlflow_names.py", "import study.sinks.mlflow_sink", "no cycles between the modules"),
    ("study/sinks/parquet.py", "import ray", "Ray only where trials meet Tune"),
    ("analysis/frames.py", "import mlflow", "MLflow is a view"),
])
def test_a_back_arrow_breaks_a_contract(tmp_path, module, back_arrow, contract):
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{back_arrow}  # noqa\n")
    proc = lint_imports(tmp_path)
    assert proc.returncode != 0
    broken = [line for line in proc.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(contract in line for line in broken), proc.stdout[-3000:]

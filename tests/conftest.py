"""Shared fixtures. The smoke study runs once per test session (Ray, Optuna, ASHA, MLflow, Parquet for
real) and every test that needs a finished study reads its output."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest.mock import patch

import pytest

from benchmarks.harness import (  # noqa: F401 - the tests import them from here
    ROOT,
    free_port,
    kill_processes_under,
    processes_below,
    ray_env,
    run_cli,
    tiny_study,
)

_own_cache: list[str] = []


def pytest_configure(config):
    """Studies run by the tests copy their empty MLflow and Optuna databases from a cache of this session's
    own (study.sqlite_cache), not the user's."""
    if "SMOOTHSTUDY_CACHE_DIR" not in os.environ:
        _own_cache.append(tempfile.mkdtemp(prefix="smoothstudy-test-cache-"))
        os.environ["SMOOTHSTUDY_CACHE_DIR"] = _own_cache[0]


# The longest test files, collected first: with xdist workers (`make test TEST_WORKERS=N`) whole files are handed
# out in collection order (--no-loadscope-reorder), so a long file collected last would run alone at the end.
LONGEST_FIRST = ("test_preset_smoke_runs.py", "test_final_runs.py", "test_faults.py", "test_e2e.py")


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


def pytest_unconfigure(config):
    for folder in _own_cache:
        shutil.rmtree(folder, ignore_errors=True)


def refusal_here(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``smoothstudy ARGS`` in this process, for a refusal: it ends before Ray or any other process starts, so a
    check costs the check, not an interpreter and a torch start-up. The real entry point's stderr (warnings
    included) is tested by the subprocess tests of test_cli.py."""
    from study.cli import main

    def ray_running() -> bool:
        running = getattr(sys.modules.get("ray"), "is_initialized", None)  # None while a preload thread imports Ray
        return bool(running and running())

    if ray_running():  # another test of this process started Ray: the real CLI starts without it (and would
        sys.modules["ray"].shutdown()  # otherwise reuse it, --address and all)
    out, err = io.StringIO(), io.StringIO()
    with patch.dict(os.environ, env or {}), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as stop:  # argparse
            code = stop.code if isinstance(stop.code, int) else 1
    assert not ray_running(), f"smoothstudy {' '.join(map(str, args))} started Ray"
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())



PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    import matplotlib.image

    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def checksums(root: Path) -> dict[str, tuple[str, int]]:
    """Every path under ``root`` with its checksum and modification time (a file rewritten with the same bytes
    was still written)."""
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir",
                                       p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory) -> Path:
    """runs/smoke of ``smoothstudy run studies/smoke.yaml``, shared by the whole session: read it, never write
    into it (a test that writes works on a copy), or the tests that read it depend on their order."""
    storage = tmp_path_factory.mktemp("runs")
    proc = run_cli("run", str(ROOT / "studies" / "smoke.yaml"), "--storage", str(storage))
    study_dir = storage / "smoke"
    (study_dir / "cli_output.txt").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    return study_dir


def digits_config(**overrides):
    """A small CPU trial on scikit-learn's digits (no files needed): the loop tests' base configuration."""
    from trainables.config import TrialConfig

    values = dict(dataset="digits", model="mlp", subset=600, val_fraction=0.2, epochs=3, batch_size=64, lr=0.1,
                  device="cpu", representation=False, probe=False, seed=11)
    return TrialConfig(**{**values, **overrides})


def untimed(metrics: dict) -> dict:
    """``metrics`` without the wall-clock ones (``time/…``), which differ between identical runs."""
    return {k: v for k, v in metrics.items() if not k.startswith("time/")}

"""Shared fixtures. The smoke study runs once per test session (Ray, Optuna, ASHA, MLflow, Parquet for
real) and every test that needs a finished study reads its output."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest.mock import patch

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
_own_cache: list[str] = []


def pytest_configure(config):
    """Studies run by the tests copy their empty MLflow and Optuna databases from a cache of this session's
    own (study.sqlite_cache), not the user's."""
    if "SMOOTHSTUDY_CACHE_DIR" not in os.environ:
        _own_cache.append(tempfile.mkdtemp(prefix="smoothstudy-test-cache-"))
        os.environ["SMOOTHSTUDY_CACHE_DIR"] = _own_cache[0]


# The longest test files, collected first: with xdist workers (`make test TEST_WORKERS=N`) whole files are handed
# out in collection order (--no-loadscope-reorder), so a long file collected last would run alone at the end.
LONGEST_FIRST = ("test_preset_smoke_runs.py", "test_mlflow_server.py", "test_final_runs.py", "test_move.py")


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


def pytest_unconfigure(config):
    for folder in _own_cache:
        shutil.rmtree(folder, ignore_errors=True)


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600, env: dict | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
    """``python -m study ARGS`` in a subprocess (a real driver: Ray and MLflow state stay out of pytest)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "study", *args], cwd=cwd or ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"smoothstudy {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}")
    return proc


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


def tiny_study(tmp_path, name: str, **overrides) -> str:
    """studies/smoke.yaml cut down: no probe, 600 digits; ``overrides`` replace whole sections."""
    spec = yaml.safe_load((ROOT / "studies" / "smoke.yaml").read_text())
    spec.update(name=name, evaluation={"representation": False, "probe": False})
    spec["data"] = {**spec["data"], "subset": 600}
    spec.update(overrides)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)

def ray_env(prefix: str = "rt") -> dict[str, str]:
    """A Ray temp dir of our own (short: Ray's socket paths must fit 107 bytes), so leftovers are findable."""
    return {"RAY_TMPDIR": tempfile.mkdtemp(prefix=prefix, dir="/tmp"), "PYTHONUNBUFFERED": "1"}

def kill_processes_under(marker: str) -> None:
    """SIGKILL the processes whose command line names ``marker`` (our own Ray temp dir), by pid."""
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        try:
            if marker in (pid_dir / "cmdline").read_bytes().decode(errors="replace"):
                os.kill(int(pid_dir.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    import matplotlib.image

    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory) -> Path:
    """runs/smoke of ``smoothstudy run studies/smoke.yaml``, shared by the whole session."""
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

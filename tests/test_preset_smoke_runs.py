"""Every preset in studies/ runs end to end with ``run --smoke-test``: search, final runs, report.

All presets run in one driver process (one Ray start for all of them) on fabricated data: Fashion-MNIST and
CIFAR-100 files of ``SMOKE_IMAGES`` training images written here (all a smoke version trains on). A preset
that asks for ``device: cuda`` runs its smoke version on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from analysis.results import read_rerun_trials, read_trials
from search_spaces.smoke import SMOKE_IMAGES, smoke_version
from search_spaces.study_file import load_study
from tests.conftest import ROOT, kill_processes_under, ray_env
from tests.trainables.test_cifar import write_cifar100
from tests.trainables.test_idx import write_idx

PRESETS = sorted((ROOT / "studies").glob("*.yaml"))
# The whole module is slow (``-m slow``): CI's default suite took 1744 s on a 2-core EPYC; there, in a suite run
# of 1168 s, lr_table1_fmnist's smoke run (the one preset it still ran) took 108 s. The default suite checks every
# preset's file (tests/test_presets.py) and runs the smoke study end to end.
pytestmark = pytest.mark.slow
DRIVER = """
import json, sys, time
from study.cli import main
out = {}
for path in sys.argv[2:]:
    start = time.perf_counter()
    try:
        code = main(["run", path, "--smoke-test", "--storage", sys.argv[1]])
    except Exception as err:  # one preset's failure is that preset's test failing, not the others'
        code = repr(err)
    out[path] = {"code": code, "seconds": time.perf_counter() - start}
    print("RESULTS " + json.dumps(out), flush=True)
"""


def write_fashion(directory, n_train=SMOKE_IMAGES, n_test=100):
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = (rng.integers(0, 60, (n, 28, 28)) + labels[:, None, None] * 19).astype(np.uint8)
        write_idx(directory / f"{prefix}-images-idx3-ubyte", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels)
    return directory


def run_group(tmp_path_factory, presets):
    root = tmp_path_factory.mktemp("presets")
    own_ray = ray_env("presets")
    env = {**os.environ, **own_ray,
           "SMOOTHSTUDY_FASHION_MNIST_DIR": str(write_fashion(root / "fashion")),
           "SMOOTHSTUDY_CIFAR_DIR": str(write_cifar100(root / "cifar", n_train=SMOKE_IMAGES, n_test=100)),
           "CUDA_VISIBLE_DEVICES": ""}
    try:
        proc = subprocess.run([sys.executable, "-c", DRIVER, str(root / "runs"), *map(str, presets)], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=2400)
    finally:
        kill_processes_under(own_ray["RAY_TMPDIR"])
    line = next((x for x in reversed(proc.stdout.splitlines()) if x.startswith("RESULTS ")), None)
    assert line, f"driver failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return root / "runs", json.loads(line.removeprefix("RESULTS ")), proc.stdout


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    return run_group(tmp_path_factory, PRESETS)  # one driver, one Ray start for every preset


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_every_preset_runs_its_smoke_version_end_to_end(smoke_runs, path):
    check_preset(smoke_runs, path)


def check_preset(group, path):
    runs, results, stdout = group
    assert str(path) in results, f"the driver died before {path.name}:\n{stdout[-3000:]}"
    assert results[str(path)]["code"] == 0, stdout[-3000:]
    spec = smoke_version(load_study(path))
    study = runs / spec.name
    first = next(line for line in stdout.splitlines() if line.startswith(f"study {spec.name}: "))
    assert "per method: " in first and "strategy per_method" in first  # each method's budget, stated first
    trials = read_trials(study)
    assert set(trials["config/loss"]) == set(spec.methods)
    asked = load_study(path).training.device
    assert set(trials["config/device"]) == {"cpu" if asked == "cuda" else asked} and spec.resources.gpu == 0
    assert (study / "report" / "report.md").exists()
    finals = read_rerun_trials(study)
    if spec.final is None:
        assert finals.empty
    else:
        done = finals[finals["status"] == "completed"]
        assert set(done["tag/kind"]) == {"final"}
        assert len(done) == len(spec.methods) * spec.final.seeds
        assert "single search trials" not in (study / "report" / "report.md").read_text()

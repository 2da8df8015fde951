"""Every preset in studies/ runs end to end with ``run --smoke-test``: search, final runs, report.

The presets of one group run in one driver process (one Ray start for all of them) on fabricated data:
Fashion-MNIST and CIFAR-100 files of ``SMOKE_IMAGES`` training images written here (all a smoke version trains
on). A preset that asks for ``device: cuda`` runs its smoke version on the CPU.

The default suite runs the presets that between them use every method, model, dataset, sampler and final-run
path; the others are slow tests: ``smoke`` is the session's ``smoke_study`` (tests/conftest.py),
``lr_table1_fmnist``'s smoke version is the GPU session's ``lr_grid`` step (tests/benchmarks/test_gpu_run.py),
and ``lr_table1_fmnist_ece`` is that study with the objective turned round."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from analysis.results import read_rerun_trials, read_trials
from search_spaces.study_file import load_study
from study.runner import SMOKE_IMAGES, smoke_version
from tests.conftest import ROOT, kill_processes_under, ray_env
from tests.trainables.test_cifar import write_cifar100
from tests.trainables.test_idx import write_idx

PRESETS = sorted((ROOT / "studies").glob("*.yaml"))
COVERED_ELSEWHERE = {"smoke", "lr_table1_fmnist", "lr_table1_fmnist_ece"}
DEFAULT_GROUP = [p for p in PRESETS if p.stem not in COVERED_ELSEWHERE]
SLOW_GROUP = [p for p in PRESETS if p.stem in COVERED_ELSEWHERE]
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
                              env=env, capture_output=True, text=True, timeout=1500)
    finally:
        kill_processes_under(own_ray["RAY_TMPDIR"])
    line = next((x for x in reversed(proc.stdout.splitlines()) if x.startswith("RESULTS ")), None)
    assert line, f"driver failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return root / "runs", json.loads(line.removeprefix("RESULTS ")), proc.stdout


@pytest.fixture(scope="module")
def default_group(tmp_path_factory):
    return run_group(tmp_path_factory, DEFAULT_GROUP)


@pytest.fixture(scope="module")
def slow_group(tmp_path_factory):
    return run_group(tmp_path_factory, SLOW_GROUP)


def test_the_default_suite_runs_every_method_model_dataset_and_sampler():
    """The default group plus the presets run end to end elsewhere in the default suite (``smoke``,
    ``lr_table1_fmnist``); ``lr_table1_fmnist_ece`` differs from ``lr_table1_fmnist`` only in its objective."""
    specs = [load_study(p) for p in PRESETS if p in DEFAULT_GROUP or p.stem in {"smoke", "lr_table1_fmnist"}]
    everything = [load_study(p) for p in PRESETS]
    ece, acc = (load_study(ROOT / "studies" / f"{n}.yaml").model_dump() for n in ("lr_table1_fmnist_ece", "lr_table1_fmnist"))
    assert {k for k in acc if acc[k] != ece[k]} == {"name", "objective"}
    for facet in (lambda s: set(s.methods), lambda s: {s.model}, lambda s: {s.data.dataset},
                  lambda s: {s.search.sampler}, lambda s: {s.final is not None}):
        assert set().union(*map(facet, everything)) == set().union(*map(facet, specs))


@pytest.mark.parametrize("path", DEFAULT_GROUP, ids=lambda p: p.stem)
def test_every_preset_runs_its_smoke_version_end_to_end(default_group, path):
    check_preset(default_group, path)


@pytest.mark.slow
@pytest.mark.parametrize("path", SLOW_GROUP, ids=lambda p: p.stem)
def test_the_presets_covered_elsewhere_run_their_smoke_version_end_to_end(slow_group, path):
    check_preset(slow_group, path)


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

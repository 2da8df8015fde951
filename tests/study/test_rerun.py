"""Reruns: which trials are chosen, their seeds, and that the same seed gives the same numbers on CPU (twice
locally, and as a Ray task)."""

from __future__ import annotations

import math
import shutil

import pandas as pd
import pytest
from mlflow import MlflowClient

from analysis.results import read_rerun_trials, read_trials
from study.errors import UsageError
from study.layout import StudyDir
from study.rerun import RERUN_SEED_OFFSET, rerun, rerun_configs, select_trials
from tests.conftest import run_cli

TRIALS = pd.DataFrame({
    "trial_id": ["a", "b", "c", "d", "e", "f"],
    "status": ["completed", "completed", "stopped", "completed", "completed", "error"],
    "config/loss": ["ce", "ce", "ce", "ls", "ls", "ls"],
    "val/acc": [0.80, 0.85, 0.99, 0.70, 0.90, 0.95],
})


def test_select_trials_best_completed_per_method():
    best = select_trials(TRIALS, "val/acc", "max", "best", 1)
    assert list(best["trial_id"]) == ["e", "b"]  # a stopped or errored trial is never chosen
    top2 = select_trials(TRIALS, "val/acc", "max", "best", 2)
    assert sorted(top2["trial_id"]) == ["a", "b", "d", "e"]
    assert list(select_trials(TRIALS, "val/acc", "min", "best", 1)["trial_id"]) == ["d", "a"]
    assert list(select_trials(TRIALS, "val/acc", "max", "c", 1)["trial_id"]) == ["c"]
    with pytest.raises(UsageError, match="trial='zz'"):
        select_trials(TRIALS, "val/acc", "max", "zz", 1)
    with pytest.raises(UsageError, match="top=0"):
        select_trials(TRIALS, "val/acc", "max", "best", 0)
    with pytest.raises(UsageError, match="no completed trial"):
        select_trials(TRIALS[TRIALS["status"] != "completed"], "val/acc", "max", "best", 1)


@pytest.fixture(scope="module")
def study_copy(smoke_study, tmp_path_factory):
    """A copy of the smoke study's search results (no checkpoints, reruns or MLflow store), so reruns here
    leave the shared study alone and other tests' reruns stay out of this one."""
    root = tmp_path_factory.mktemp("rerun") / "smoke"
    shutil.copytree(smoke_study, root, ignore=shutil.ignore_patterns("ray", "report", "reruns", "mlflow.db",
                                                                     "mlflow_runs.json"))
    return StudyDir(root)


def _best(study: StudyDir) -> pd.DataFrame:
    """The best completed trial of the study (whichever method it is: ASHA decides which complete)."""
    return select_trials(read_trials(study.root), "val/acc", "max", "best", 1).head(1)


def test_rerun_configs_new_seeds(study_copy):
    row = _best(study_copy)
    jobs = rerun_configs(row, seeds=3, epochs=1, device="cpu")
    seed = int(row["config/seed"].iloc[0])
    assert [cfg.seed for _, cfg in jobs] == [seed + RERUN_SEED_OFFSET + i for i in range(3)]
    method = row["config/loss"].iloc[0]
    assert all(source == row["trial_id"].iloc[0] and cfg.epochs == 1 and cfg.loss == method for source, cfg in jobs)


def _numbers(result: dict) -> dict:
    return {k: v for k, v in result.items() if "/" in k and not k.startswith("time/")}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(x == b[k] or (math.isnan(x) and math.isnan(b[k])) for k, x in a.items())


@pytest.fixture(scope="module")
def local_rerun(study_copy):
    source = str(_best(study_copy)["trial_id"].iloc[0])
    return source, rerun(study_copy, trial=source, seeds=1, epochs=1, device="cpu", echo=lambda _: None)


def test_same_seed_same_numbers_locally(study_copy, local_rerun):
    source, first = local_rerun
    second = rerun(study_copy, trial=source, seeds=1, epochs=1, device="cpu", echo=lambda _: None)
    assert len(first) == len(second) == 1 and first[0]["status"] == "completed"
    assert len(_numbers(first[0])) > 20 and "test/acc" in first[0]
    assert _same(_numbers(first[0]), _numbers(second[0]))
    rows = read_rerun_trials(study_copy.root).set_index("trial_id")
    assert rows.loc[first[0]["trial_id"], "tag/source_trial"] == source

    client = MlflowClient(study_copy.default_mlflow_uri)
    experiment = client.get_experiment_by_name("smoke")
    tagged = client.search_runs([experiment.experiment_id], "tags.kind = 'rerun'")
    assert {r.data.tags["source_trial"] for r in tagged} == {source}
    assert {r.info.run_name for r in tagged} == {first[0]["trial_id"]}  # the same run, not a new one each time


@pytest.mark.slow
def test_same_seed_same_numbers_as_a_ray_task(study_copy, local_rerun):
    source, first = local_rerun
    run_cli("rerun", str(study_copy.root), "--trial", source, "--seeds", "1", "--epochs", "1", "--device", "cpu",
            "--parallel")
    on_ray = read_rerun_trials(study_copy.root).set_index("trial_id").loc[first[0]["trial_id"]]
    assert on_ray["tag/source_trial"] == source and on_ray["status"] == "completed"
    assert _same(_numbers(first[0]), {k: float(on_ray[k]) for k in _numbers(first[0])})

"""A study folder moved elsewhere (another disk, another head node) and continued there (its final runs; a
finished study is not resumed) keeps its MLflow runs: found by their tags, not by the folder's old path."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest
from mlflow import MlflowClient

from analysis.core.layout import StudyDir
from analysis.results import read_rerun_trials, read_trials
from study.sinks.mlflow_names import RUN_KIND_TAG, STUDY_ID_TAG, TRIAL_TAG
from tests.conftest import run_cli


def _runs(study: StudyDir):
    client = MlflowClient(study.default_mlflow_uri)
    experiment = client.get_experiment_by_name(study.name)
    return client, client.search_runs([experiment.experiment_id], max_results=1000)


@pytest.mark.slow  # 82 s of the default suite on a 2-core EPYC (final runs on the moved study)
def test_a_moved_study_continues_and_syncs_without_duplicate_runs(smoke_study, tmp_path):
    moved = StudyDir(tmp_path / "elsewhere" / smoke_study.name)
    shutil.copytree(smoke_study, moved.root, ignore=shutil.ignore_patterns("report", "cli_output.txt"))
    meta = json.loads(moved.meta_file.read_text())
    assert meta["study_id"] and "optuna_storage" in meta
    _, before = _runs(moved)

    run_cli("final", str(moved.root), "--seeds", "1", "--device", "cpu", timeout=600)
    sync = run_cli("mlflow-sync", str(moved.root))
    assert "runs_created=0" in sync.stdout, sync.stdout

    client, runs = _runs(moved)
    reruns = read_rerun_trials(moved.root)
    finals = reruns[reruns["tag/kind"] == "final"]
    assert len(finals) == 2 and len(runs) == len(before) + len(finals)  # one final run per method, nothing else
    assert all(r.data.tags[STUDY_ID_TAG] == meta["study_id"] for r in runs)
    kinds = Counter(r.data.tags[RUN_KIND_TAG] for r in runs)
    assert kinds["study"] == 1
    trials = Counter(r.data.tags[TRIAL_TAG] for r in runs if TRIAL_TAG in r.data.tags)
    known = set(read_trials(moved.root)["trial_id"]) | set(read_rerun_trials(moved.root)["trial_id"])
    assert set(trials) == known and set(trials.values()) == {1}  # one run per trial (and per rerun)
    # the store's artifact paths now point into the moved folder
    experiment = client.get_experiment_by_name(moved.name)
    assert experiment.artifact_location.startswith(moved.root.as_uri())
    assert all(r.info.artifact_uri.startswith(moved.root.as_uri()) for r in runs)

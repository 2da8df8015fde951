"""Optuna trials and MLflow runs of a real study point at each other (and at Ray's trial ids)."""

from __future__ import annotations

from mlflow import MlflowClient

from analysis.core.layout import StudyDir
from analysis.results import read_trials
from study.optuna_bridge import MLFLOW_RUN_ATTR, RAY_TRIAL_ATTR, optuna_studies
from study.sinks.mlflow import OPTUNA_TRIAL_TAG, TRIAL_TAG


def test_optuna_trials_name_their_ray_trial_and_mlflow_run(smoke_study):
    study = StudyDir(smoke_study)
    studies = optuna_studies(study.optuna_storage, study.name)
    assert {s.study_name for s in studies} == {f"{study.name}.ce", f"{study.name}.ls"}  # per_method: one each
    trials = [t for s in studies for t in s.get_trials()]
    ray_ids = set(read_trials(smoke_study)["trial_id"])
    linked = [t for t in trials if RAY_TRIAL_ATTR in t.user_attrs]
    assert {t.user_attrs[RAY_TRIAL_ATTR] for t in linked} == ray_ids
    client = MlflowClient(study.default_mlflow_uri)
    experiment = client.get_experiment_by_name(study.name)
    runs = {r.data.tags.get(TRIAL_TAG): r for r in client.search_runs([experiment.experiment_id], max_results=1000)}
    both_ways = 0
    for trial in linked:
        run = runs[trial.user_attrs[RAY_TRIAL_ATTR]]
        assert run.data.tags[OPTUNA_TRIAL_TAG] == str(trial.number)  # MLflow -> Optuna: always
        if MLFLOW_RUN_ATTR in trial.user_attrs:  # Optuna -> MLflow: unless the trial ended before the sinks wrote
            assert trial.user_attrs[MLFLOW_RUN_ATTR] == run.info.run_id
            both_ways += 1
    assert both_ways >= 1

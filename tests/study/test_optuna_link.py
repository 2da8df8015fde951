"""Optuna trials and MLflow runs of a real study point at each other (and at Ray's trial ids)."""

from __future__ import annotations

import optuna
from mlflow import MlflowClient

from analysis.core.layout import StudyDir
from analysis.results import read_trials
from study.optuna_bridge import MLFLOW_RUN_ATTR, RAY_TRIAL_ATTR
from study.sinks.mlflow import OPTUNA_TRIAL_TAG, TRIAL_TAG


def test_optuna_trials_name_their_ray_trial_and_mlflow_run(smoke_study):
    study = StudyDir(smoke_study)
    trials = optuna.load_study(study_name=study.name, storage=study.optuna_storage).get_trials()
    ray_ids = set(read_trials(smoke_study)["trial_id"])
    linked = [t for t in trials if RAY_TRIAL_ATTR in t.user_attrs]
    assert {t.user_attrs[RAY_TRIAL_ATTR] for t in linked} == ray_ids
    client = MlflowClient(study.default_mlflow_uri)
    for trial in linked:
        run = client.get_run(trial.user_attrs[MLFLOW_RUN_ATTR])
        assert run.data.tags[TRIAL_TAG] == trial.user_attrs[RAY_TRIAL_ATTR]
        assert run.data.tags[OPTUNA_TRIAL_TAG] == str(trial.number)

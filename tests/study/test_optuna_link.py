"""Optuna trials and MLflow runs of a real study point at each other (and at Ray's trial ids)."""

from __future__ import annotations

import optuna
from mlflow import MlflowClient

from analysis.core.layout import StudyDir
from analysis.results import read_trials
from study.optuna_bridge import MLFLOW_RUN_ATTR, RAY_TRIAL_ATTR
from study.optuna_link import OptunaLink
from study.optuna_store import optuna_studies
from study.sinks.base import TrialStart
from study.sinks.mlflow_names import OPTUNA_TRIAL_TAG, TRIAL_TAG


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
    for trial in linked:
        run = runs[trial.user_attrs[RAY_TRIAL_ATTR]]
        assert run.data.tags[OPTUNA_TRIAL_TAG] == str(trial.number)  # MLflow -> Optuna: always
        if MLFLOW_RUN_ATTR in trial.user_attrs:  # Optuna -> MLflow: unless the trial ended before the sinks wrote
            assert trial.user_attrs[MLFLOW_RUN_ATTR] == run.info.run_id


class FakeMlflow:
    """The two calls the link makes of the MLflow sink."""

    def __init__(self, runs):
        self.runs, self.tags = runs, {}

    def run_id(self, trial_id):
        return self.runs.get(trial_id)

    def tag(self, trial_id, tags):
        self.tags.setdefault(trial_id, {}).update(tags)


def _start(trial_id):
    return TrialStart(trial_id=trial_id, config={"loss": "ce"})


def test_a_running_trial_gets_its_run_id_and_its_run_the_trial_number(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="s.ce", storage=storage)
    first, running = study.ask(), study.ask()
    for trial, ray_id in ((first, "t0"), (running, "t1")):
        trial.set_user_attr(RAY_TRIAL_ATTR, ray_id)
    study.tell(first, 1.0)  # ended before the sinks caught up: no attribute, no error
    mlflow = FakeMlflow({"t0": "run-a", "t1": "run-b", "t9": "run-z"})
    link = OptunaLink(storage, "s", mlflow)
    for ray_id in ("t0", "t1", "t9", "t5"):  # t9: no Optuna trial; t5: no run
        link.trial_started(_start(ray_id))
    attrs = {t.number: t.user_attrs for t in optuna.load_study(study_name="s.ce", storage=storage).get_trials()}
    assert attrs[running.number][MLFLOW_RUN_ATTR] == "run-b"
    assert MLFLOW_RUN_ATTR not in attrs[first.number]
    assert mlflow.tags == {"t0": {OPTUNA_TRIAL_TAG: str(first.number)}, "t1": {OPTUNA_TRIAL_TAG: str(running.number)}}

"""Links each search trial's Optuna trial and MLflow run both ways: the Optuna trial gets the MLflow run id
as a user attribute (next to the Ray trial id the searcher stores), the MLflow run the Optuna trial number as
a tag. A sink placed after the MLflow sink; it never stops a study (a failure warns once)."""

from __future__ import annotations

import warnings
from typing import Any

try:
    from optuna.exceptions import UpdateFinishedTrialError
except ImportError:  # Optuna < 4.3 raises a plain RuntimeError for an update of a finished trial
    UpdateFinishedTrialError = RuntimeError

from study.optuna_bridge import MLFLOW_RUN_ATTR, RAY_TRIAL_ATTR
from study.optuna_store import optuna_studies
from study.sinks.base import ResultSink, TrialEnd, TrialStart
from study.sinks.mlflow_names import OPTUNA_TRIAL_TAG
from study.sinks.mlflow_sink import MlflowSink


class OptunaLink(ResultSink):
    def __init__(self, storage_url: str, study_name: str, mlflow: MlflowSink) -> None:
        self.storage_url = storage_url
        self.study_name = study_name
        self.mlflow = mlflow
        self._by_ray_id: dict[str, tuple[Any, Any]] = {}  # Ray trial id -> (Optuna study, FrozenTrial)
        self._warned = False

    def trial_started(self, start: TrialStart) -> None:
        try:
            self._link(start.trial_id)
        except Exception as err:  # noqa: BLE001 - a missing link must not stop the study
            if not self._warned:
                self._warned = True
                warnings.warn(f"could not link Optuna trials to MLflow runs ({type(err).__name__}: {err})",
                              stacklevel=2)

    def epoch(self, trial_id: str, epoch: int, metrics: dict[str, float]) -> None:
        return None

    def trial_ended(self, end: TrialEnd) -> None:
        return None

    def _optuna_trial(self, trial_id: str) -> tuple[Any, Any] | None:
        """The study (the joint one, or the method's own under ``per_method``) and Optuna trial of a Ray trial."""
        if trial_id not in self._by_ray_id:
            self._by_ray_id = {t.user_attrs[RAY_TRIAL_ATTR]: (study, t)
                               for study in optuna_studies(self.storage_url, self.study_name)
                               for t in study.get_trials(deepcopy=False) if RAY_TRIAL_ATTR in t.user_attrs}
        return self._by_ray_id.get(trial_id)

    def _link(self, trial_id: str) -> None:
        run_id = self.mlflow.run_id(trial_id)
        found = self._optuna_trial(trial_id)
        if run_id is None or found is None:
            return
        study, trial = found
        self.mlflow.tag(trial_id, {OPTUNA_TRIAL_TAG: str(trial.number)})
        if trial.user_attrs.get(MLFLOW_RUN_ATTR) != run_id:
            try:
                study._storage.set_trial_user_attr(trial._trial_id, MLFLOW_RUN_ATTR, run_id)
            except UpdateFinishedTrialError:
                pass  # the sinks write behind the driver: a short trial can end first (its run keeps the link)

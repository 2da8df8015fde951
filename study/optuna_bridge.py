"""Tells Optuna what really happened to each trial.

Ray's ``OptunaSearch`` records a trial that ASHA stopped early as COMPLETE with its value at the stopping
epoch, an errored trial with a last result as COMPLETE, and cannot tell a NaN (it stays RUNNING). TPE then
ranks an epoch-1 value against finished trials. Here a trial stopped before its last epoch is PRUNED with
its per-epoch intermediate values (TPE ranks pruned trials by how far they got and their last value), an
errored or diverged one is FAIL, and only a trial that ran every epoch with finite objectives is COMPLETE.
"""

from __future__ import annotations

import logging
import math
import pickle
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from analysis.core.statuses import TrialStatus

logger = logging.getLogger(__name__)
RAY_TRIAL_ATTR, MLFLOW_RUN_ATTR = "ray_trial_id", "mlflow_run_id"  # Optuna user attributes of a search trial


def _storage_url(storage: Any) -> str | None:
    """The URL of an Optuna RDB storage (behind Optuna's cache wrapper); None for other storages."""
    return getattr(getattr(storage, "_backend", storage), "url", None)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def trial_outcome(result: dict[str, Any] | None, error: bool, metrics: list[str], epochs: int
                  ) -> tuple[TrialState, list[float] | None]:
    """The Optuna state (and objective values, for COMPLETE) of a trial whose last Tune result is ``result``."""
    if error or not result:
        return TrialState.FAIL, None
    values = [result.get(m) for m in metrics]
    if result.get("status") == TrialStatus.DIVERGED or not all(_finite(v) for v in values):
        return TrialState.FAIL, None
    if int(result.get("epoch", 0)) < epochs:
        return TrialState.PRUNED, None
    return TrialState.COMPLETE, [float(v) for v in values]


class TruthfulOptunaSearch(OptunaSearch):
    """``OptunaSearch`` that reports each epoch under its epoch number and ends trials with their real state.

    ``epochs`` is the number of epochs a trial runs when nothing stops it (``training.epochs``).
    """

    def __init__(self, *args: Any, epochs: int, **kwargs: Any) -> None:
        if epochs < 1:
            raise ValueError(f"epochs={epochs}: allowed: an integer >= 1")
        super().__init__(*args, **kwargs)
        self.epochs = epochs

    @property
    def _metrics(self) -> list[str]:
        return list(self.metric) if isinstance(self.metric, list) else [self.metric]

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        """Ray's suggestion, with the Ray trial id stored on the Optuna trial (user attribute
        ``RAY_TRIAL_ATTR``): Optuna Dashboard and the report link both ways."""
        config = super().suggest(trial_id)
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is not None and RAY_TRIAL_ATTR not in ot_trial.user_attrs:
            ot_trial.set_user_attr(RAY_TRIAL_ATTR, trial_id)
        return config

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id not in self._completed_trials and trial_id in self._ot_trials:
            self._report(trial_id, result)

    def _report(self, trial_id: str, result: dict[str, Any]) -> None:
        if isinstance(self.metric, list):  # Optuna keeps no intermediate values for multi-objective studies
            return
        value, epoch = result.get(self.metric), result.get("epoch")
        if not _finite(value) or epoch is None:
            return
        ot_trial = self._ot_trials[trial_id]
        stored = ot_trial.storage.get_trial(ot_trial._trial_id)
        # A retried or resumed trial re-sends epochs (and may already be finished in the Optuna database).
        if stored.state == TrialState.RUNNING and int(epoch) not in stored.intermediate_values:
            ot_trial.report(float(value), int(epoch))

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        if result and not error:  # the result on which ASHA stopped the trial comes only here
            self._report(trial_id, result)
        state, values = trial_outcome(result, error, self._metrics, self.epochs)
        try:
            # PRUNED without values: Optuna takes the last intermediate value as the trial's value. A trial
            # already told by a driver that died afterwards is left as it was.
            self._ot_study.tell(self._ot_trials[trial_id], values, state=state, skip_if_finished=True)
        except ValueError as err:
            logger.warning("optuna: could not record trial %s as %s: %s", trial_id, state.name, err)
        self._completed_trials.add(trial_id)

    # The storage URL a restored or unpickled searcher reopens its study on (set by the driver before
    # Tuner.restore): the study folder may have moved since the searcher was saved. None: where it was.
    storage_on_restore: str | None = None

    # Pickled (Tune's experiment state, the searcher checkpoint), a searcher keeps its study's name and storage
    # URL, not the storage object: unpickling Optuna's RDBStorage would open the database where it was.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        study = state.get("_ot_study")
        url = _storage_url(study._storage) if study is not None else None
        if url is not None:
            del state["_ot_study"]
            state.pop("_storage", None)
            state["_ot_trials"] = {tid: t._trial_id for tid, t in self._ot_trials.items()}
            state["_saved_study"] = (study.study_name, url)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        saved = state.pop("_saved_study", None)
        self.__dict__.update(state)
        if saved is not None:
            name, url = saved
            self._open_study(name, self.storage_on_restore or url, state["_ot_trials"])

    def _open_study(self, name: str, url: str, trial_ids: dict[str, int]) -> None:
        study = optuna.load_study(study_name=name, storage=url, sampler=self._sampler)
        self._ot_study = study
        self._storage = study._storage
        self._ot_trials = {tid: optuna.trial.Trial(study, number) for tid, number in trial_ids.items()}

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__getstate__(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)
        if isinstance(state, dict) and "_saved_study" in state:
            self.__setstate__(state)
        else:  # saved by Ray's OptunaSearch (or an in-memory study)
            super().restore(checkpoint_path)
            self.reopen_storage(self.storage_on_restore)
        self.fail_orphans()

    def reopen_storage(self, url: str | None) -> bool:
        """Points the study and its live trials at the storage ``url``; False when it already uses that one."""
        study = self._ot_study
        if url is None or _storage_url(study._storage) == url:
            return False
        self._open_study(study.study_name, url, {tid: t._trial_id for tid, t in self._ot_trials.items()})
        return True

    def fail_orphans(self) -> list[int]:
        """Optuna trials left RUNNING by a driver that died after asking for them but before Tune saved its
        state: no Tune trial will ever finish them, so they are FAIL (and do not bias the sampler)."""
        known = {t.number for t in self._ot_trials.values()}
        orphans = [t.number for t in self._ot_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                   if t.number not in known]
        for number in orphans:
            self._ot_study.tell(number, state=TrialState.FAIL)
        return orphans

"""A study's persisted Optuna studies, read back (``status``, the report, the Optuna link): the one of a joint
search, or each method's own (``<study>.<method>``) under ``per_method``. Optuna is imported when a storage is
read, and Ray never: a command that only reads a study back (``status``) starts neither."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna


def optuna_studies(storage_uri: str, study_name: str) -> list[optuna.Study]:
    """The persisted Optuna study of a joint search, or the per-method ones (``<study>.<method>``)."""
    import optuna

    names = [n for n in optuna.get_all_study_names(storage=storage_uri)
             if n == study_name or n.startswith(f"{study_name}.")]
    return [optuna.load_study(study_name=n, storage=storage_uri) for n in names]


def optuna_trials(storage_uri: str, study_name: str) -> list[optuna.trial.FrozenTrial]:
    return [t for s in optuna_studies(storage_uri, study_name) for t in s.get_trials(deepcopy=False)]


def optuna_trial_states(storage_uri: str, study_name: str) -> dict[str, int]:
    """How many trials of the persisted Optuna study (or studies) are in each state (``{"COMPLETE": 3}``)."""
    counts: dict[str, int] = {}
    for trial in optuna_trials(storage_uri, study_name):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts

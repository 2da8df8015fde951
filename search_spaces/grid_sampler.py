"""``search.sampler: grid`` over the conditional define-by-run space (the sampler registry makes it)."""

from __future__ import annotations

import warnings
from typing import Any

import optuna
from optuna.trial import TrialState


class ConditionalGridSampler(optuna.samplers.BruteForceSampler):
    """Every configuration of a finite conditional space once (``search.sampler: grid``).

    Optuna's ``GridSampler`` needs one fixed space and would enumerate the product of every method's grid
    (CE once per combination of the other methods' values); ``BruteForceSampler`` walks the define-by-run
    tree (``loss``, then that method's parameters), skipping configurations already finished or running. Its
    ``after_trial`` calls ``Study.stop()`` once the tree is exhausted, which raises outside
    ``Study.optimize`` (Ray asks and tells); Tune's ``num_samples`` ends the study instead."""

    def __init__(self, seed: int | None = None) -> None:
        with warnings.catch_warnings():  # experimental since Optuna 3.1; chosen knowingly, not news per study
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            super().__init__(seed=seed)

    def after_trial(self, study: Any, trial: Any, state: TrialState, values: Any) -> None:
        return None


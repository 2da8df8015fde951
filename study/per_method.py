"""``search.strategy: per_method`` for Ray Tune: one searcher and one ASHA per method.

``PerMethodSearch`` hands out the search trials in a fixed round-robin order of methods (``budgets.interleave``)
and delegates each to its method's own ``TruthfulOptunaSearch`` (own Optuna study, own sampler history, own
space without the ``loss`` choice). ``PerMethodASHA`` keeps one ASHA per method, so a rung compares a trial
only with trials of the same method (a method with one trial always runs to the end).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from search_spaces.space import trial_seed
from study.optuna_bridge import TruthfulOptunaSearch


class PerMethodSearch(Searcher):
    def __init__(self, searchers: dict[str, TruthfulOptunaSearch], order: list[str],
                 metric: str | list[str], mode: str | list[str], seed: int = 0,
                 trial_seeds: str = "per_trial") -> None:
        super().__init__(metric=metric, mode=mode)
        self.searchers = searchers
        self.order = order
        self.seed = seed
        self.trial_seeds = trial_seeds
        self.owner: dict[str, str] = {}  # Tune trial id -> method
        self.number: dict[str, int] = {}  # Tune trial id -> its place in the search
        self.asked = 0

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if trial_id not in self.owner:
            if self.asked >= len(self.order):
                return Searcher.FINISHED
            self.owner[trial_id] = self.order[self.asked]
            self.number[trial_id] = self.asked
            self.asked += 1
        config = self.searchers[self.owner[trial_id]].suggest(trial_id)
        if isinstance(config, dict):  # numbered across methods, as in a joint search
            config["seed"] = trial_seed(self.seed, self.number[trial_id], self.trial_seeds)
        return config

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id in self.owner:
            self.searchers[self.owner[trial_id]].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id in self.owner:
            self.searchers[self.owner[trial_id]].on_trial_complete(trial_id, result=result, error=error)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__.copy(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))
        for searcher in self.searchers.values():
            searcher.fail_orphans()


class PerMethodASHA(FIFOScheduler):
    """``make()`` builds one method's ASHA (a picklable ``functools.partial``: Tune pickles its scheduler)."""

    def __init__(self, make: Callable[[], TrialScheduler]) -> None:
        super().__init__()
        self.make = make
        self.schedulers: dict[str, TrialScheduler] = {}
        self._owner: dict[str, str] = {}

    def _of(self, trial: Any) -> TrialScheduler:
        method = self._owner.setdefault(trial.trial_id, str(trial.config.get("loss")))
        if method not in self.schedulers:
            self.schedulers[method] = self.make()
        return self.schedulers[method]

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self._of(trial).on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self._of(trial).on_trial_error(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        return self._of(trial).on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self._of(trial).on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._of(trial).on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return "ASHA per method: " + "; ".join(f"{m}: {s.debug_string()}" for m, s in self.schedulers.items())

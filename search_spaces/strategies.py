"""How a study searches (``search.strategy``), one object per strategy: how many trials Tune runs and which
search each is asked from, the budget of each method, the run's first line, the smoke test's cut, how the
searchers and ASHA are put together, and ASHA's rungs. The study file's allowed values are this registry's
names; nothing else branches on the strategy.

This layer sees no Ray: ``study.search`` hands in the Tune classes (a method's Optuna searcher, the
per-method searcher and scheduler, ASHA), and a strategy decides how they are put together.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from search_spaces.asha import study_rungs
from search_spaces.budgets import Budgets, interleave, split_budget
from search_spaces.samplers import sampler_info

# (Optuna study name, method or None for the joint space) -> a searcher of that space
MakeSearcher = Callable[[str, str | None], Any]


class SearchStrategy(ABC):
    name: ClassVar[str]

    @abstractmethod
    def order(self, spec: Any) -> list[str | None]:
        """The search each trial is asked from, in the order Tune asks: a method's own search, or None for
        the one joint search. Raises ``ValueError`` when the study file's search cannot run."""

    def trials(self, spec: Any) -> int:
        """The search trials Tune runs."""
        return len(self.order(spec))

    def check(self, spec: Any) -> None:
        """Raises ``ValueError`` (one line naming the field) when the search cannot run."""
        self.order(spec)

    @abstractmethod
    def describe(self, spec: Any) -> str:
        """The run's first line: how many trials of which methods, and each method's budget."""

    @abstractmethod
    def smoke_samples(self, spec: Any, samples: int) -> int:
        """The trials of the smoke test, given at most ``samples``."""

    @abstractmethod
    def searcher(self, spec: Any, one: MakeSearcher, per_method: Callable[[dict[str, Any], list[str]], Any]) -> Any:
        """The study's searcher, from ``one`` (a searcher of one space) and ``per_method`` (the searchers of
        each method and the order of the trials -> one searcher)."""

    @abstractmethod
    def scheduler(self, make_asha: Callable[[], Any], per_method: Callable[[Callable[[], Any]], Any]) -> Any:
        """The study's ASHA, from ``make_asha`` (one ASHA) and ``per_method`` (one ASHA per method)."""

    def rungs(self, spec: Any) -> list[int]:
        """The epochs at which ASHA may stop a trial (the same for every strategy: per method, each method's
        ASHA has them)."""
        return study_rungs(spec.asha, spec.training.epochs)


class Joint(SearchStrategy):
    """One search over the conditional space: the sampler also picks the method; one ASHA over every trial."""

    name = "joint"

    def order(self, spec: Any) -> list[str | None]:
        return [None] * spec.search.num_samples

    def trials(self, spec: Any) -> int:
        return spec.search.num_samples

    def describe(self, spec: Any) -> str:
        return (f"{spec.search.num_samples} trials of {', '.join(spec.methods)} (strategy joint: the "
                f"{spec.search.sampler} sampler picks the method)")

    def smoke_samples(self, spec: Any, samples: int) -> int:
        return samples

    def searcher(self, spec: Any, one: MakeSearcher, per_method: Callable) -> Any:
        return one(spec.name, None)

    def scheduler(self, make_asha: Callable[[], Any], per_method: Callable) -> Any:
        return make_asha()


class PerMethod(SearchStrategy):
    """One search per method (Optuna study ``<study>.<method>``), each with its budget of trials (see
    ``search_spaces.budgets``), asked round-robin; one ASHA per method, so a rung compares a trial only with
    trials of its own method."""

    name = "per_method"

    def budgets(self, spec: Any) -> Budgets:
        from search_spaces.space import (
            configurations,  # the losses' registry (torch): not needed to read a file
        )

        return split_budget(configurations(spec), spec.search.num_samples,
                            capped=sampler_info(spec.search.sampler).enumerates)

    def order(self, spec: Any) -> list[str | None]:
        return list(interleave(self.budgets(spec)))

    def trials(self, spec: Any) -> int:
        return self.budgets(spec).total

    def describe(self, spec: Any) -> str:
        budgets = self.budgets(spec)
        unused = spec.search.num_samples - budgets.total
        return (f"{budgets.total} trials (strategy per_method, {spec.search.sampler} in each method's space), "
                f"{budgets.describe()}" + (f"; {unused} of num_samples unused: every grid is covered" if unused else ""))

    def smoke_samples(self, spec: Any, samples: int) -> int:
        return max(samples, len(spec.methods))  # every method gets its trial

    def searcher(self, spec: Any, one: MakeSearcher, per_method: Callable) -> Any:
        budgets = self.budgets(spec)
        return per_method({m: one(f"{spec.name}.{m}", m) for m in budgets.trials}, interleave(budgets))

    def scheduler(self, make_asha: Callable[[], Any], per_method: Callable) -> Any:
        return per_method(make_asha)


STRATEGIES: dict[str, SearchStrategy] = {s.name: s for s in (PerMethod(), Joint())}


def strategy_of(spec: Any) -> SearchStrategy:
    return STRATEGIES[spec.search.strategy]


def trials_asked(spec: Any) -> int:
    """The search trials Tune runs: ``num_samples``, or less when ``per_method`` grids are all covered."""
    return strategy_of(spec).trials(spec)

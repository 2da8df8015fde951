"""The Optuna samplers a search may use (``search.sampler``), keyed by the name the study file gives: the
study file's allowed values are this registry's names. One sampler is made per search space: the joint
space, or each method's own space under ``search.strategy: per_method``.

TPE runs with the constant liar: Ray asks for the next trial while others are still running, and without it
concurrent asks see the same history and propose near-identical configurations. With several objectives
``tpe`` is Optuna's multi-objective TPE, which models the hyperparameters from the objectives (NSGA-II's
first generation, 50 trials by default, is random sampling). Optuna is imported only when a sampler is made:
reading a study file does not need it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SamplerInfo:
    name: str
    make: Callable[[int | None, int], Any]  # (seed, n_startup_trials) -> optuna.samplers.BaseSampler
    enumerates: bool = False  # walks every configuration once: needs finite grids, caps each method's trials


def _tpe(seed: int | None, n_startup_trials: int):
    import optuna

    with warnings.catch_warnings():  # constant_liar, multivariate and group are "experimental" in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials, multivariate=True,
                                          group=True, constant_liar=True)


def _random(seed: int | None, n_startup_trials: int):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _nsga2(seed: int | None, n_startup_trials: int):
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed)


def _grid(seed: int | None, n_startup_trials: int):
    from search_spaces.grid_sampler import ConditionalGridSampler

    return ConditionalGridSampler(seed=seed)


SAMPLERS = {s.name: s for s in (SamplerInfo("tpe", _tpe), SamplerInfo("random", _random),
                                SamplerInfo("nsga2", _nsga2), SamplerInfo("grid", _grid, enumerates=True))}


def sampler_info(name: str) -> SamplerInfo:
    try:
        return SAMPLERS[name]
    except KeyError:
        raise ValueError(f"search.sampler={name!r} is not allowed; allowed: {', '.join(SAMPLERS)}") from None


def make_sampler(name: str, seed: int | None, n_startup_trials: int):
    """The Optuna sampler ``name``; ``n_startup_trials``: random trials before TPE models (TPE only)."""
    return sampler_info(name).make(seed, n_startup_trials)

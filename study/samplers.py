"""The Optuna sampler of a search (``search.sampler``), one per search space: the joint space, or each
method's own space under ``search.strategy: per_method``.

TPE runs with the constant liar: Ray asks for the next trial while others are still running, and without it
concurrent asks see the same history and propose near-identical configurations. With several objectives
``tpe`` is Optuna's multi-objective TPE, which models the hyperparameters from the objectives (NSGA-II's
first generation, 50 trials by default, is random sampling).
"""

from __future__ import annotations

import warnings

import optuna

from study.optuna_bridge import ConditionalGridSampler


def make_sampler(name: str, seed: int | None, n_startup_trials: int) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():  # constant_liar, multivariate and group are "experimental" in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials, multivariate=True,
                                              group=True, constant_liar=True)
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed)
        if name == "grid":
            return ConditionalGridSampler(seed=seed)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"search.sampler={name!r} is not allowed; allowed: tpe, random, nsga2, grid")

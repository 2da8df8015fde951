"""The search's registries: the samplers and the strategies a study file may name are the registries' keys,
and each one it accepts runs."""

from __future__ import annotations

import optuna
import pytest

from search_spaces.samplers import SAMPLERS, make_sampler
from search_spaces.strategies import STRATEGIES, strategy_of, trials_asked
from search_spaces.study_file import StudyFileError, parse_study

GRIDS = {"ce": {}, "ls": {"alpha": {"grid": [0.1, 0.2]}}}


def _spec(**search):
    return parse_study({"name": "r", "data": {"dataset": "digits"}, "methods": GRIDS,
                        "search": {"num_samples": 5, **search}})


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_registered_sampler_is_allowed_and_made(name):
    assert _spec(sampler=name).search.sampler == name
    assert isinstance(make_sampler(name, seed=0, n_startup_trials=2), optuna.samplers.BaseSampler)


def test_an_unregistered_sampler_is_refused_naming_the_registry():
    with pytest.raises(StudyFileError, match="search.sampler='cmaes': Input should be " +
                       ", ".join(f"'{n}'" for n in list(SAMPLERS)[:-1]) + f" or '{list(SAMPLERS)[-1]}'"):
        _spec(sampler="cmaes")


def test_an_enumerating_sampler_caps_each_methods_trials_at_its_grid():
    assert SAMPLERS["grid"].enumerates and not SAMPLERS["tpe"].enumerates
    assert trials_asked(_spec(sampler="grid")) == 3  # ce 1 + ls 2: the rest of num_samples unused
    assert trials_asked(_spec(sampler="tpe")) == 5


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_registered_strategy_is_allowed(name):
    spec = _spec(strategy=name)
    assert strategy_of(spec) is STRATEGIES[name]
    order = strategy_of(spec).order(spec)
    assert len(order) == trials_asked(spec) == 5
    assert strategy_of(spec).describe(spec).startswith("5 trials")


def test_an_unregistered_strategy_is_refused():
    with pytest.raises(StudyFileError, match="search.strategy='both'"):
        _spec(strategy="both")


def test_per_method_needs_a_trial_for_every_method_and_joint_does_not():
    with pytest.raises(StudyFileError, match="num_samples=1 is below the 2 methods"):
        _spec(num_samples=1)
    assert trials_asked(_spec(num_samples=1, strategy="joint")) == 1

import logging

import optuna
import pytest

from study import quiet as quiet_module
from study.quiet import QUIET_ENV, quiet, quiet_optuna


@pytest.fixture
def clean(monkeypatch):
    for name in QUIET_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(quiet_module, "_optuna_quiet", False)
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    yield
    optuna.logging.set_verbosity(before)


def test_quiet_sets_the_switches_and_optunas_level_once_a_search_starts(clean, monkeypatch):
    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "DEBUG")  # the user's own switch stays
    quiet(verbose=False)
    assert optuna.logging.get_verbosity() == logging.INFO  # not yet: nothing imports Optuna for a refusal
    quiet_optuna()
    assert optuna.logging.get_verbosity() == logging.WARNING
    import os

    assert os.environ["RAY_LOGGER_LEVEL"] == "warning" and os.environ["MLFLOW_LOGGING_LEVEL"] == "DEBUG"


def test_verbose_leaves_every_switch(clean):
    import os

    quiet(verbose=True)
    quiet_optuna()
    assert optuna.logging.get_verbosity() == logging.INFO
    assert not any(name in os.environ for name in QUIET_ENV)

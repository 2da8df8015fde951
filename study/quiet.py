"""Quiet by default: the commands that train (``run``, ``resume``, ``final``, ``rerun``) print the study's own
lines (progress, results, the answer) and the warnings that matter; Ray's, Tune's, Optuna's and MLflow's INFO
lines (a local Ray started, Tune's configuration box and TensorBoard hint, "a new study created" per method,
MLflow creating its tables, Tune writing its state) come back with ``--verbose``.

It works through the libraries' own switches, set before they are imported or started, so the processes the
driver starts (Ray's workers, the MLflow sink's process) inherit them; a switch the user set is left as it is."""

from __future__ import annotations

import logging
import os

QUIET_ENV = {
    "RAY_LOGGER_LEVEL": "warning",  # the driver's Ray logger (read when Ray is imported)
    "RAY_AIR_NEW_OUTPUT": "0",  # Tune's reporter that honours verbose=0 (the new one prints a box regardless)
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    # Tune warns when a step of its loop takes over 0.5 s, which a busy machine does at every other result; a
    # step of seconds is still reported
    "TUNE_WARN_THRESHOLD_S": "5",
}
# Loggers whose WARNING is routine here: the Ray cluster's token authentication is on by default (not a problem to
# report at every start)
QUIET_LOGGERS = ("ray._private.authentication.authentication_token_setup",)


_optuna_quiet = False


def quiet(verbose: bool = False) -> None:
    """Sets the libraries' switches for quiet output, unless ``verbose``. Optuna's is set when a search starts
    (``quiet_optuna``): importing Optuna here would slow every refusal of bad input."""
    global _optuna_quiet
    if verbose:
        return
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    _optuna_quiet = True


def quiet_optuna() -> None:
    """Optuna's "A new study created" INFO lines off, when ``quiet`` was asked for; its level is set when it is
    first used, so this runs after it is imported."""
    if not _optuna_quiet:
        return
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

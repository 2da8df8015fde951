"""Which of Ray Tune's per-result file loggers a study keeps.

Tune adds a CSV, a JSON and a TensorBoard logger to every run that is not given one of each kind, and each of
them writes every result of every trial in the driver's loop. A study's Parquet and MLflow sinks hold the same
results, so it keeps the JSON logger alone (``result.json``: what Tune's own analysis tools read; a trial's
metrics other than the objectives are packed there, ``trainables.tune_reporting.result_metrics`` reads them) and
hands Tune a silent stand-in of each of the other two, which Tune then does not add. Given as ``RunConfig(callbacks=…)``.
"""

from __future__ import annotations

from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback


class _Silent:
    """Logs nothing and opens nothing (the TensorBoard logger's own constructor imports tensorboardX): Tune
    counts the kind as present and adds none of it."""

    def __init__(self) -> None:
        pass

    def log_trial_start(self, trial) -> None:
        pass

    def log_trial_result(self, iteration, trial, result) -> None:
        pass

    def log_trial_end(self, trial, failed: bool = False) -> None:
        pass


class SkippedCSVLogger(_Silent, CSVLoggerCallback):
    """progress.csv: the Parquet ``epochs`` table holds the same rows."""


class SkippedTensorBoardLogger(_Silent, TBXLoggerCallback):
    """TensorBoard event files: MLflow holds the same curves."""


def study_loggers() -> list:
    """Tune's logger callbacks for a study: JSON kept, CSV and TensorBoard left to the sinks."""
    return [JsonLoggerCallback(), SkippedCSVLogger(), SkippedTensorBoardLogger()]

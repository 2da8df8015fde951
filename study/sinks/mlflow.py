"""MLflow: one experiment per study, a parent run for the study and one child run per trial. MLflow is a view:
Parquet is the source of truth. The parts: ``mlflow_names`` (tags, name rules),
``mlflow_runs`` (finding and logging a study's runs), ``mlflow_sink`` (the live sink), ``mlflow_sync``
(back-fill from Parquet). This module gathers their public names for the modules that import them from here.
"""

from study.sinks.mlflow_names import (
    KIND_TAG,
    MISSED_TAG,
    OPTUNA_TRIAL_TAG,
    REASON_TAG,
    STATUS_TAG,
    STUDY_ID_TAG,
    STUDY_TAG,
    TRIAL_TAG,
    VALID_NAME,
    default_tracking_uri,
    flatten_params,
    local_artifact_location,
    numeric_metrics,
)
from study.sinks.mlflow_runs import RunStore, find_study_runs, log_artifacts
from study.sinks.mlflow_sink import MlflowSink
from study.sinks.mlflow_sync import SyncSummary, sync_from_parquet, sync_study

__all__ = [
    "KIND_TAG", "MISSED_TAG", "OPTUNA_TRIAL_TAG", "REASON_TAG", "STATUS_TAG", "STUDY_ID_TAG", "STUDY_TAG",
    "TRIAL_TAG", "VALID_NAME", "MlflowSink", "RunStore", "SyncSummary", "default_tracking_uri",
    "find_study_runs", "flatten_params", "local_artifact_location", "log_artifacts", "numeric_metrics",
    "sync_from_parquet",
    "sync_study",
]

"""MLflow's names and limits as a study uses them: the tags that find a study's runs, which metric names MLflow
accepts, how params are flattened. A trial's status becomes its run's end state by the one mapping in
``analysis.core.statuses`` (``mlflow_run_status``), which the live sink and ``mlflow-sync`` both use."""

from __future__ import annotations

import re
import warnings
from numbers import Number
from pathlib import Path
from typing import Any

from analysis.core.layout import StudyDir
from study.sqlite_cache import ARTIFACT_DIR, sqlite_file
from trainables.config import flatten

MAX_BATCH = 1000  # metrics per log_batch request (MLflow's limit)
MAX_PARAM_CHARS = 6000
MAX_TAG_CHARS = 5000
STUDY_TAG, TRIAL_TAG, RUN_KIND_TAG = "smoothstudy.study", "smoothstudy.trial_id", "smoothstudy.kind"
STUDY_ID_TAG = "smoothstudy.study_id"  # unique per study (study.json); the study's name before it had one
OPTUNA_TRIAL_TAG = "smoothstudy.optuna_trial"  # the Optuna trial number of a search trial
STATUS_TAG, REASON_TAG = "smoothstudy.status", "smoothstudy.reason"
# On the study's parent run: how many results the live sink did not log (its queue was full); `mlflow-sync`
# removes it once it has back-filled them.
MISSED_TAG = "smoothstudy.missed_results"
PARENT_TAG = "mlflow.parentRunId"
# MLflow 3's UI opens an experiment without this tag on its GenAI overview; with it, on the runs table.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
VALID_NAME = re.compile(r"^[/\w.\- :]+$")  # MLflow's rule for metric, param and tag names
_invalid_seen: set[str] = set()


def default_tracking_uri(study_dir: Path | str) -> str:
    return StudyDir(Path(study_dir).resolve()).default_mlflow_uri


def flatten_params(values: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """A trial's configuration as MLflow params: flattened, each value a string within MLflow's limit."""
    return {name: str(value)[:MAX_PARAM_CHARS] for name, value in flatten(values, prefix).items()}


def numeric_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Numeric values under names MLflow accepts; ``epoch`` is the step, not a metric."""
    out = {}
    for key, value in metrics.items():
        if key == "epoch" or isinstance(value, bool) or not isinstance(value, Number):
            continue
        if not VALID_NAME.match(key):
            if key not in _invalid_seen:
                _invalid_seen.add(key)
                warnings.warn(
                    f"metric {key!r} is not logged to MLflow (allowed in names: letters, digits, "
                    "_ - . space : /); it is in Parquet",
                    stacklevel=3,
                )
            continue
        out[key] = float(value)
    return out


def local_artifact_location(tracking_uri: str) -> str | None:
    """Artifacts of a SQLite store go next to the database: MLflow's default is ``./mlruns`` of whatever
    directory the driver happens to run in. Servers choose their own artifact root (None)."""
    db = sqlite_file(tracking_uri)
    return None if db is None else (db.absolute().parent / ARTIFACT_DIR).as_uri()


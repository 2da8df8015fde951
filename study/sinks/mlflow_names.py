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
from analysis.core.tables import SEARCH_KIND
from analysis.formatting import LOSS_PARAMS, hparams_text
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


METHOD_PARAM = "loss"  # a trial's method, the first of its params
SHORT_ID = 8  # characters of a trial id in a run's name


def flatten_params(values: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """A trial's configuration as MLflow params: flattened, each value a string within MLflow's limit; the
    method and its own hyperparameters first."""
    flat = flatten(values, prefix)
    first = [k for k in (f"{prefix}{METHOD_PARAM}",) if k in flat]
    first += sorted(k for k in flat if k.startswith(f"{prefix}{LOSS_PARAMS}"))
    order = first + [k for k in flat if k not in first]
    return {name: str(flat[name])[:MAX_PARAM_CHARS] for name in order}


def child_run_name(trial_id: str, config: dict[str, Any], tags: dict[str, Any]) -> str:
    """What a trial's run is, as the runs table shows it: ``ls alpha=0.1872 · 0d9de8c0`` (method, its
    hyperparameters, a short trial id); a rerun's: ``ls alpha=0.1872 · final seed 1000000 · 0d9de8c0`` (its kind,
    seed and source trial)."""
    flat = flatten(config)
    own = {k: v for k, v in flat.items() if k.startswith(LOSS_PARAMS)}
    parts = [str(flat.get(METHOD_PARAM, "?")) + (f" {hparams_text(own, sep=' ')}" if own else "")]
    if "source_trial" in tags:  # a retrained configuration
        parts.append(f"{tags.get('kind', 'rerun')} seed {flat.get('seed', '?')}")
        trial_id = str(tags["source_trial"])
    parts.append(trial_id[-SHORT_ID:])
    return " · ".join(parts)


def child_tags(trial_id: str, tags: dict[str, Any]) -> dict[str, str]:
    """A trial run's own tags: its kind once (``smoothstudy.kind``: ``trial`` for a search trial, else the
    rerun's kind), its trial id, and its other labels (``source_trial``)."""
    out = {RUN_KIND_TAG: str(tags.get("kind", SEARCH_KIND)), TRIAL_TAG: trial_id}
    out.update({k: str(v)[:MAX_TAG_CHARS] for k, v in tags.items() if k != "kind"})
    return out


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


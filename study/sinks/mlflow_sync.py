"""``smoothstudy mlflow-sync``: back-fill MLflow from the study's Parquet files (the source of truth)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Number
from pathlib import Path
from typing import Any

from analysis.core.layout import StudyDir
from analysis.core.statuses import TrialStatus, mlflow_run_status
from analysis.core.tables import BEST_PREFIX, CONFIG_PREFIX, EPOCH_KEY_COLUMNS, TAG_PREFIX
from analysis.results import (
    read_epochs,
    read_rerun_epochs,
    read_rerun_trials,
    read_trials,
    reruns_dir,
)
from study.sinks.base import TrialStart
from study.sinks.mlflow_names import MISSED_TAG, REASON_TAG, STATUS_TAG, VALID_NAME, default_tracking_uri
from study.sinks.mlflow_runs import RunStore, log_artifacts


@dataclass
class SyncSummary:
    runs_created: int = 0
    metrics_logged: int = 0
    trials: int = 0
    reruns: int = 0
    artifacts_logged: int = 0


def sync_study(study: StudyDir, tracking_uri: str | None = None) -> SyncSummary:
    """:func:`sync_from_parquet` of a study folder: to its own tracking store unless ``tracking_uri`` is given,
    its runs found by its ``study_id``, a trial's files from its latest Ray checkpoint."""
    return sync_from_parquet(study.root, tracking_uri or study.mlflow_uri, study_id=study.study_id,
                             artifacts_of=study.trial_artifacts)


def sync_from_parquet(
    study_dir: Path | str,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    study_id: str | None = None,
    artifacts_of: Callable[[str], Path | None] | None = None,
) -> SyncSummary:
    """Back-fill MLflow from the study's Parquet files, the search trials and the reruns: runs that are
    missing, metric steps not logged yet, final metrics, tags, status, and the files of a trial whose run has
    none (``artifacts_of(trial_id)``: the trial's artifacts folder, or None). Idempotent; raises when MLflow
    cannot be reached (the user asked for it). Defaults: the study's SQLite store, the experiment named after
    the study, runs found by ``study_id`` (the study's name for a study that has none).
    """
    study_dir = Path(study_dir)
    trials = read_trials(study_dir)
    known = trials["study"].dropna() if "study" in trials else []
    study = str(known.iloc[0]) if len(known) else study_dir.name
    store = RunStore(tracking_uri or default_tracking_uri(study_dir), experiment or study, study, study_id)
    summary = SyncSummary()
    summary.runs_created += store.parent()[1]
    _sync_table(store, trials, read_epochs(study_dir), summary, artifacts_of)
    if reruns_dir(study_dir).is_dir():
        reruns = read_rerun_trials(study_dir)
        summary.reruns = len(reruns)
        _sync_table(store, reruns, read_rerun_epochs(study_dir), summary, None)
    parent = store.parent()[0]
    if MISSED_TAG in store.client.get_run(parent).data.tags:
        store.client.delete_tag(parent, MISSED_TAG)
    return summary


def _sync_table(store: RunStore, trials, epochs, summary: SyncSummary,
                artifacts_of: Callable[[str], Path | None] | None) -> None:
    by_trial = dict(tuple(epochs.groupby("trial_id"))) if len(epochs) else {}
    for row in trials.to_dict("records"):
        row = {k: v for k, v in row.items() if not _missing(v)}
        config = {k.removeprefix(CONFIG_PREFIX): v for k, v in row.items() if k.startswith(CONFIG_PREFIX)}
        tags = {k.removeprefix(TAG_PREFIX): str(v) for k, v in row.items() if k.startswith(TAG_PREFIX)}
        run_id, created = store.trial_run(TrialStart(row["trial_id"], config, tags))
        summary.trials += 1
        summary.runs_created += created
        rows = by_trial.get(row["trial_id"])
        last_step, logged = (0, {}) if rows is None else _sync_epochs(store, run_id, rows, created)
        summary.metrics_logged += sum(len(v) for v in logged.values())
        summary.metrics_logged += _sync_end(store, run_id, row, last_step, logged.get(last_step, {}), created)
        folder = artifacts_of(str(row["trial_id"])) if artifacts_of is not None else None
        if folder is not None and folder.is_dir() and not store.client.list_artifacts(run_id):
            summary.artifacts_logged += log_artifacts(store.client, run_id, folder)


def _sync_epochs(
    store: RunStore, run_id: str, rows, created: bool
) -> tuple[int, dict[int, dict[str, float]]]:
    """Log the epoch rows' values whose step the run lacks; returns the last epoch and what was logged."""
    keys = [
        c
        for c in rows.columns
        if c not in EPOCH_KEY_COLUMNS
        and not c.startswith(CONFIG_PREFIX)
        and rows[c].dtype.kind in "fiu"
        and VALID_NAME.match(c)
    ]
    per_step: dict[int, dict[str, float]] = {}
    for key in keys:
        done = set() if created else store.steps_logged(run_id, key)
        for epoch, value in zip(rows["epoch"], rows[key]):
            if int(epoch) not in done and not _missing(value):
                per_step.setdefault(int(epoch), {})[key] = float(value)
    for epoch, values in sorted(per_step.items()):
        store.log(run_id, values, step=epoch)
    return int(rows["epoch"].max()), per_step


def _sync_end(
    store: RunStore, run_id: str, row: dict[str, Any], step: int, just_logged: dict[str, float], created: bool
) -> int:
    """Final metrics not yet at ``step``, status and reason tags, and the run's end state."""
    final = {
        k: float(v)
        for k, v in row.items()
        if "/" in k
        and not k.startswith((CONFIG_PREFIX, TAG_PREFIX, BEST_PREFIX))
        and VALID_NAME.match(k)
        and isinstance(v, Number)
    }
    missing = {
        k: v
        for k, v in final.items()
        if k not in just_logged and (created or step not in store.steps_logged(run_id, k))
    }
    status = str(row.get("status", TrialStatus.RUNNING))
    store.log(run_id, missing, step=step, tags={STATUS_TAG: status, REASON_TAG: str(row.get("reason", ""))})
    end = mlflow_run_status(status)
    if end is not None:
        store.client.set_terminated(run_id, end)
    return len(missing)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))

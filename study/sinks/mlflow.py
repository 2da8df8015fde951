"""MLflow: one experiment per study, a parent run for the study and one child run per trial.

Only :class:`mlflow.MlflowClient` with explicit run ids is used: the fluent ``mlflow.set_experiment`` exports
``MLFLOW_EXPERIMENT_ID``, which would override Ray's experiment name. A study's runs are found by their tags
(``smoothstudy.study_id``, ``smoothstudy.trial_id``), never by where the study's files are: a study moved to
another folder or resumed from another head node continues its runs instead of opening new ones.

MLflow is a view: Parquet is the source of truth. When the tracking server cannot be reached the sink warns
once, stops logging and retries now and then; ``sync_from_parquet`` back-fills what MLflow missed.
"""

from __future__ import annotations

import math
import os
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Number
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag, ViewType

from analysis.results import (
    BEST_PREFIX,
    CONFIG_PREFIX,
    EPOCH_KEY_COLUMNS,
    TAG_PREFIX,
    read_epochs,
    read_rerun_epochs,
    read_rerun_trials,
    read_trials,
    reruns_dir,
)
from study.sinks.base import TrialEnd, TrialStart
from study.sinks.parquet import SAMPLES_FILE
from study.sqlite_cache import move_artifact_root, new_mlflow_database, sqlite_file

MAX_BATCH = 1000  # metrics per log_batch request (MLflow's limit)
MAX_PARAM_CHARS = 6000
MAX_TAG_CHARS = 5000
STUDY_TAG, TRIAL_TAG, KIND_TAG = "smoothstudy.study", "smoothstudy.trial_id", "smoothstudy.kind"
STUDY_ID_TAG = "smoothstudy.study_id"  # unique per study (study.json); the study's name before it had one
OPTUNA_TRIAL_TAG = "smoothstudy.optuna_trial"  # the Optuna trial number of a search trial
STATUS_TAG, REASON_TAG = "smoothstudy.status", "smoothstudy.reason"
PARENT_TAG = "mlflow.parentRunId"
# MLflow 3's UI opens an experiment without this tag on its GenAI overview; with it, on the runs table.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
# A trial's status (study.sinks.base.TRIAL_STATUSES, and "lost") -> its MLflow run's end state; "running"
# has none. The live sink and `mlflow-sync` both use this one mapping.
RUN_END_STATUS = {
    "completed": RunStatus.FINISHED,
    "stopped": RunStatus.FINISHED,
    "diverged": RunStatus.FAILED,
    "error": RunStatus.FAILED,
    "lost": RunStatus.KILLED,
}
VALID_NAME = re.compile(r"^[/\w.\- :]+$")  # MLflow's rule for metric, param and tag names
_invalid_seen: set[str] = set()


def default_tracking_uri(study_dir: Path | str) -> str:
    return f"sqlite:///{Path(study_dir).resolve() / 'mlflow.db'}"


def flatten_params(values: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_params(value, name + "."))
        else:
            flat[name] = str(value)[:MAX_PARAM_CHARS]
    return flat


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
    return None if db is None else (db.absolute().parent / "mlartifacts").as_uri()


def run_end_status(status: str) -> str | None:
    """The MLflow run status a trial that ended with ``status`` gets (None: it has not ended)."""
    end = RUN_END_STATUS.get(status)
    return None if end is None else RunStatus.to_string(end)


def _quoted(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def find_study_runs(client: MlflowClient, experiment_id: str, study_id: str) -> dict[str, Any]:
    """``{"parent": run id or None, "trials": {trial id: run id}}`` of the study tagged ``study_id`` in the
    experiment, from the runs' tags (the oldest run wins should there be two for one trial)."""
    found: dict[str, Any] = {"parent": None, "trials": {}}
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{STUDY_ID_TAG}` = {_quoted(study_id)}",
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=1000,
            order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        for run in page:
            tags = run.data.tags
            if tags.get(KIND_TAG) == "study":
                found["parent"] = found["parent"] or run.info.run_id
            elif TRIAL_TAG in tags:
                found["trials"].setdefault(tags[TRIAL_TAG], run.info.run_id)
        token = page.token
        if not token:
            return found


class RunStore:
    """The raw MLflow operations of a study (they raise on failure). Its runs are looked up once, by tag."""

    def __init__(self, tracking_uri: str, experiment: str, study_name: str, study_id: str | None = None) -> None:
        self.uri = tracking_uri
        artifacts = local_artifact_location(tracking_uri)
        new_mlflow_database(tracking_uri, artifacts)
        if artifacts is not None:
            move_artifact_root(tracking_uri, artifacts)  # a study folder that was moved
        self.client = MlflowClient(tracking_uri)
        self.study = study_name
        self.study_id = study_id or study_name
        self.experiment_id = self._experiment(experiment)
        self.map = find_study_runs(self.client, self.experiment_id, self.study_id)
        self.map["experiment_id"] = self.experiment_id

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is None:
            return self.client.create_experiment(name, tags={STUDY_TAG: self.study, **EXPERIMENT_KIND},
                                                 artifact_location=local_artifact_location(self.uri))
        if found.lifecycle_stage == "deleted":
            self.client.restore_experiment(found.experiment_id)
        return found.experiment_id

    def _tags(self, kind: str) -> dict[str, str]:
        return {STUDY_TAG: self.study, STUDY_ID_TAG: self.study_id, KIND_TAG: kind}

    def parent(
        self, settings: dict[str, Any] | None = None, study_file: Path | None = None
    ) -> tuple[str, bool]:
        """The study's parent run id, created (with settings and study file) if the study has none."""
        if self.map["parent"] is not None:
            return self.map["parent"], False
        run = self.client.create_run(self.experiment_id, run_name=self.study, tags=self._tags("study"))
        run_id = run.info.run_id
        if settings:
            self.log(run_id, params=flatten_params(settings))
        if study_file is not None and Path(study_file).is_file():
            self.client.log_artifact(run_id, str(study_file))
        self.map["parent"] = run_id
        return run_id, True

    def trial_run(self, start: TrialStart) -> tuple[str, bool]:
        """The trial's run id, created under the parent (params = its config) if the study has none."""
        run_id = self.map["trials"].get(start.trial_id)
        if run_id is not None:
            return run_id, False
        parent, _ = self.parent()
        tags = {
            PARENT_TAG: parent,
            **self._tags("trial"),
            TRIAL_TAG: start.trial_id,
            **{k: str(v)[:MAX_TAG_CHARS] for k, v in start.tags.items()},
        }
        run = self.client.create_run(self.experiment_id, run_name=start.trial_id, tags=tags)
        run_id = run.info.run_id
        self.log(run_id, params=flatten_params(start.config))
        self.map["trials"][start.trial_id] = run_id
        return run_id, True

    def log(
        self,
        run_id: str,
        metrics: dict[str, float] | None = None,
        step: int = 0,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.log_to(self.client, run_id, metrics, step, params, tags)

    @staticmethod
    def log_to(
        client: MlflowClient,
        run_id: str,
        metrics: dict[str, float] | None = None,
        step: int = 0,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        """Metrics, params and tags in as few requests as MLflow's limits allow."""
        now = int(time.time() * 1000)
        entries = [Metric(k, v, now, step) for k, v in (metrics or {}).items()]
        params_ = [Param(k, v) for k, v in (params or {}).items()]
        tags_ = [RunTag(k, v[:MAX_TAG_CHARS]) for k, v in (tags or {}).items()]
        if not (entries or params_ or tags_):
            return
        # MLflow's limits per request: 1000 metrics, 100 params, 100 tags.
        for i in range(0, max(len(entries), 1), MAX_BATCH):
            client.log_batch(
                run_id,
                metrics=entries[i : i + MAX_BATCH],
                params=params_[:100] if i == 0 else [],
                tags=tags_[:100] if i == 0 else [],
            )
        for i in range(100, max(len(params_), len(tags_)), 100):
            client.log_batch(run_id, params=params_[i : i + 100], tags=tags_[i : i + 100])

    def steps_logged(self, run_id: str, key: str) -> set[int]:
        return {m.step for m in self.client.get_metric_history(run_id, key)}


class MlflowSink:
    """A :class:`~study.sinks.base.ResultSink` logging to MLflow; it never raises for an MLflow failure.

    For an ``http(s)`` tracking URI it lowers MLflow's HTTP retries/timeout (unless the environment sets
    them) so that a server outage costs seconds, not minutes, of the driver's time.
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        study_name: str,
        study_file: Path | None,
        settings: dict[str, Any],
        *,
        study_id: str | None = None,
        retry_after_s: float = 60.0,
    ) -> None:
        if tracking_uri.startswith(("http://", "https://")):
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        self.tracking_uri = tracking_uri
        self._args = (tracking_uri, experiment, study_name, study_id)
        self._study_file = study_file
        self._settings = settings
        self.retry_after_s = retry_after_s
        self.available = True  # False after a failure, until a retry succeeds
        self.missed = False  # something was not logged: `smoothstudy mlflow-sync` back-fills it
        self._warned = False
        self._failed_at = 0.0
        self._store: RunStore | None = None
        self._starts: dict[str, TrialStart] = {}  # to open a trial's run late, after an outage
        self._runs: dict[str, str] = {}
        self._last_epoch: dict[str, tuple[int, set[str]]] = {}
        self._guard(self._connect)

    @property
    def parent_run_id(self) -> str | None:
        return self._store.map["parent"] if self._store else None

    def run_id(self, trial_id: str) -> str | None:
        return self._runs.get(trial_id)

    def tag(self, trial_id: str, tags: dict[str, str]) -> None:
        """Tags on a trial's run (e.g. the Optuna trial number), logged like everything else: never raises."""
        self._guard(lambda: self._store.log(self._trial_run(trial_id), tags=tags))

    # -- ResultSink ---------------------------------------------------------------------------------
    def trial_started(self, start: TrialStart) -> None:
        self._starts[start.trial_id] = start
        self._runs.pop(start.trial_id, None)
        self._guard(self._open_trial, start.trial_id)

    def epoch(self, trial_id: str, epoch: int, metrics: dict[str, float]) -> None:
        values = numeric_metrics(metrics)
        self._last_epoch[trial_id] = (int(epoch), set(values))
        self._guard(lambda: self._store.log(self._trial_run(trial_id), values, step=int(epoch)))

    def trial_ended(self, end: TrialEnd) -> None:
        self._guard(self._end_trial, end)

    def close(self) -> None:
        def finish() -> None:
            self._store.client.set_terminated(
                self._store.parent()[0], RunStatus.to_string(RunStatus.FINISHED)
            )

        self._guard(finish)

    # -- internals ----------------------------------------------------------------------------------
    def _connect(self) -> None:
        if self._store is None:
            self._store = RunStore(*self._args)
        parent, created = self._store.parent(self._settings, self._study_file)
        if not created:
            self._store.client.update_run(parent, status="RUNNING")

    def _open_trial(self, trial_id: str) -> str:
        run_id, created = self._store.trial_run(self._starts[trial_id])
        if not created:  # a resumed trial continues its run
            self._store.client.update_run(run_id, status="RUNNING")
        self._runs[trial_id] = run_id
        return run_id

    def _trial_run(self, trial_id: str) -> str:
        if trial_id in self._runs:
            return self._runs[trial_id]
        if trial_id not in self._starts:
            self._starts[trial_id] = TrialStart(trial_id, {})
        return self._open_trial(trial_id)

    def _end_trial(self, end: TrialEnd) -> None:
        run_id = self._trial_run(end.trial_id)
        step, already = self._last_epoch.get(end.trial_id, (0, set()))
        final = {k: v for k, v in numeric_metrics(end.final_metrics).items() if k not in already}
        self._store.log(run_id, final, step=step, tags={STATUS_TAG: end.status, REASON_TAG: end.reason})
        if end.artifacts_dir is not None:
            log_artifacts(self._store.client, run_id, Path(end.artifacts_dir))
        self._store.client.set_terminated(run_id, run_end_status(end.status) or "FINISHED")

    def _guard(self, action, *args) -> None:
        if not self.available:
            if time.monotonic() - self._failed_at < self.retry_after_s:
                self.missed = True
                return
            try:  # the server may be back
                self._connect()
            except Exception:  # noqa: BLE001
                self._failed_at = time.monotonic()
                self.missed = True
                return
            self.available = True
            warnings.warn(
                f"MLflow at {self.tracking_uri} is reachable again; logging resumes. Run "
                "`smoothstudy mlflow-sync` to back-fill what was missed.",
                stacklevel=3,
            )
        try:
            action(*args)
        except Exception as err:  # noqa: BLE001 - any MLflow/network failure must not stop the study
            self.available = False
            self.missed = True
            self._failed_at = time.monotonic()
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"MLflow logging to {self.tracking_uri} failed ({type(err).__name__}: {err}). The study "
                    "goes on and Parquet keeps every result; MLflow logging is paused (retried every "
                    f"{self.retry_after_s:g} s). Back-fill later with `smoothstudy mlflow-sync`.",
                    stacklevel=3,
                )


def log_artifacts(client: MlflowClient, run_id: str, directory: Path) -> int:
    """Every file under ``directory`` except the per-sample outputs (they live in Parquet); how many."""
    logged = 0
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path.name == SAMPLES_FILE:
            continue
        sub = path.parent.relative_to(directory).as_posix()
        client.log_artifact(run_id, str(path), artifact_path=None if sub == "." else sub)
        logged += 1
    return logged


@dataclass
class SyncSummary:
    runs_created: int = 0
    metrics_logged: int = 0
    trials: int = 0
    reruns: int = 0
    artifacts_logged: int = 0


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
    status = str(row.get("status", "running"))
    store.log(run_id, missing, step=step, tags={STATUS_TAG: status, REASON_TAG: str(row.get("reason", ""))})
    end = run_end_status(status)
    if end is not None:
        store.client.set_terminated(run_id, end)
    return len(missing)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))

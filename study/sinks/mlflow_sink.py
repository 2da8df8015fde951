"""The live MLflow sink: a :class:`~study.sinks.base.ResultSink` that never raises for an MLflow failure.
When the tracking server cannot be reached it warns once, stops logging and retries now and then;
``study.sinks.mlflow_sync`` back-fills what it missed from Parquet."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

from mlflow.entities import RunStatus

from analysis.core.statuses import mlflow_run_status
from study.sinks.base import EpochResult, ResultSink, SinkEvent, TrialEnd, TrialStart
from study.sinks.mlflow_names import MISSED_TAG, REASON_TAG, STATUS_TAG, numeric_metrics
from study.sinks.mlflow_runs import RunStore, log_artifacts


class MlflowSink(ResultSink):
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
        self._logged_through: dict[str, int] = {}  # a continued run's last step already in MLflow
        self._guard(self._connect)

    @property
    def parent_run_id(self) -> str | None:
        return self._store.map["parent"] if self._store else None

    def run_id(self, trial_id: str) -> str | None:
        return self._runs.get(trial_id)

    def tag(self, trial_id: str, tags: dict[str, str]) -> None:
        """Tags on a trial's run (e.g. the Optuna trial number), logged like everything else: never raises."""
        self._guard(lambda: self._store.log(self._trial_run(trial_id), tags=tags))

    def missed_results(self, count: int) -> None:
        """``count`` results never reached this sink (they were dropped before it): the parent run says so
        until ``mlflow-sync`` back-fills them."""
        self.missed = True
        self._guard(lambda: self._store.log(self._store.parent()[0], tags={MISSED_TAG: str(count)}))

    # -- ResultSink ---------------------------------------------------------------------------------
    def trial_started(self, start: TrialStart) -> None:
        self._starts[start.trial_id] = start
        self._runs.pop(start.trial_id, None)
        self._guard(self._open_trial, start.trial_id)

    def epoch(self, trial_id: str, epoch: int, metrics: dict[str, float]) -> None:
        self.write_batch([EpochResult(trial_id, epoch, metrics)])

    def write_batch(self, events: list[SinkEvent]) -> None:
        """In order, with each trial's epoch results gathered into one ``log_batch`` request (per 1000
        values) made before that trial's next start or end, or at the batch's end."""
        pending: dict[str, dict[int, dict[str, float]]] = {}

        def log_pending(trial_id: str) -> None:
            steps = pending.pop(trial_id, None)
            if steps:
                self._guard(lambda: self._store.log(self._trial_run(trial_id), steps=steps))

        for event in events:
            if isinstance(event, EpochResult):
                values = numeric_metrics(event.metrics)
                self._last_epoch[event.trial_id] = (int(event.epoch), set(values))
                if int(event.epoch) <= self._logged_through.get(event.trial_id, 0):
                    continue  # a resumed trial replays what came after its checkpoint: MLflow may have it
                pending.setdefault(event.trial_id, {}).setdefault(int(event.epoch), {}).update(values)
                continue
            log_pending(event.trial_id)
            if isinstance(event, TrialStart):
                self.trial_started(event)
            else:
                self.trial_ended(event)
        for trial_id in list(pending):
            log_pending(trial_id)

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
            self._logged_through[trial_id] = self._store.last_step(run_id)
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
        self._store.client.set_terminated(run_id, mlflow_run_status(end.status) or "FINISHED",
                                          end_time=None if end.at is None else int(end.at * 1000))

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

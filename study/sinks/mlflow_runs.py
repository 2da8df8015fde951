"""A study's runs in MLflow: the experiment, the parent run and a child run per trial, found by their tags
(never by where the study's files are), and the raw logging calls (they raise on failure).

Only :class:`mlflow.MlflowClient` with explicit run ids is used: the fluent ``mlflow.set_experiment`` exports
``MLFLOW_EXPERIMENT_ID``, which would override Ray's experiment name.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType

from analysis.core.tables import SAMPLES_FILE, SEARCH_KIND
from study.sinks.base import TrialStart
from study.sinks.mlflow_names import (
    EXPERIMENT_KIND,
    MAX_BATCH,
    MAX_TAG_CHARS,
    PARENT_TAG,
    RUN_KIND_TAG,
    STUDY_ID_TAG,
    STUDY_TAG,
    TRIAL_TAG,
    child_run_name,
    child_tags,
    flatten_params,
    local_artifact_location,
)
from study.sqlite_cache import move_artifact_root, new_mlflow_database


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
            if tags.get(RUN_KIND_TAG) == "study":
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
        return {STUDY_TAG: self.study, STUDY_ID_TAG: self.study_id, RUN_KIND_TAG: kind}

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
        tags = {PARENT_TAG: parent, **self._tags(SEARCH_KIND), **child_tags(start.trial_id, start.tags)}
        run = self.client.create_run(self.experiment_id, run_name=child_run_name(start.trial_id, start.config,
                                                                                  start.tags), tags=tags,
                                     start_time=None if start.at is None else int(start.at * 1000))
        run_id = run.info.run_id
        self.log(run_id, params=flatten_params(start.config))
        self.map["trials"][start.trial_id] = run_id
        return run_id, True

    def log(self, run_id: str, metrics: dict[str, float] | None = None, step: int = 0, **rest: Any) -> None:
        """:meth:`log_to` on this store's client (``params``, ``tags``, ``steps`` as there)."""
        self.log_to(self.client, run_id, metrics, step, **rest)

    @staticmethod
    def log_to(
        client: MlflowClient,
        run_id: str,
        metrics: dict[str, float] | None = None,
        step: int = 0,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        steps: dict[int, dict[str, float]] | None = None,
    ) -> None:
        """Metrics (``metrics`` at ``step``, and ``steps``: {step: metrics}), params and tags in as few
        requests as MLflow's limits allow."""
        now = int(time.time() * 1000)
        entries = [Metric(k, v, now, step) for k, v in (metrics or {}).items()]
        entries += [Metric(k, v, now, s) for s, values in (steps or {}).items() for k, v in values.items()]
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

    def last_step(self, run_id: str) -> int:
        """The last step of one of the run's metrics (an epoch's metrics are logged together); 0 for none."""
        keys = sorted(self.client.get_run(run_id).data.metrics)
        return max(self.steps_logged(run_id, keys[0]), default=0) if keys else 0


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

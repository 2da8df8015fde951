"""`smoothstudy report`: the comparison of a study's methods, written next to its results and logged to the
study's MLflow parent run."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from analysis.core.layout import StudyDir
from search_spaces.study_file import StudySpec
from study.runner import load_study_of

REPORT_ARTIFACT_DIR = "report"


def asha_rungs(spec: StudySpec) -> list[int]:
    """The epochs at which ASHA compares trials: grace_period · reduction_factor^k below max_t."""
    if not spec.asha.enabled:
        return []
    max_t = spec.asha.max_t or spec.training.epochs
    rungs, t = [], float(spec.asha.grace_period)
    while t < max_t:
        rungs.append(round(t))
        t *= spec.asha.reduction_factor
    return rungs


def mlflow_uri_of(study: StudyDir) -> str:
    from study.sqlite_cache import study_tracking_uri

    return study_tracking_uri(study)


def run_map_of(study: StudyDir) -> dict:
    """The study's ``{"parent": run id, "trials": {trial id: run id}}`` in its tracking store, found by the
    runs' tags (empty when the store has no such experiment or cannot be reached)."""
    try:
        from mlflow import MlflowClient

        from study.sinks.mlflow import find_study_runs

        client = MlflowClient(mlflow_uri_of(study))
        experiment = client.get_experiment_by_name(load_study_of(study).name)
        if experiment is None:
            return {}
        return find_study_runs(client, experiment.experiment_id, study.study_id)
    except Exception as err:  # noqa: BLE001 - MLflow is a view; callers fall back or warn
        warnings.warn(f"could not look up the study's MLflow runs ({type(err).__name__}: {err})", stacklevel=2)
        return {}


def matrix_loader(study: StudyDir) -> Callable[[str, str], np.ndarray | None]:
    """Reads a trial's learned target matrix ``<method>_targets.npy``: from the trial's final Ray checkpoint
    under ``runs/<study>/ray`` when it is still there, else from its MLflow run's artifacts."""

    def load(trial_id: str, method: str) -> np.ndarray | None:
        name = f"{method}_targets.npy"
        local = study.trial_artifacts(trial_id)
        if local is not None and (local / name).exists():
            return np.load(local / name)
        from mlflow import MlflowClient

        run_id = run_map_of(study).get("trials", {}).get(trial_id)
        if run_id is None:
            return None
        with tempfile.TemporaryDirectory() as d:
            return np.load(MlflowClient(mlflow_uri_of(study)).download_artifacts(run_id, name, d))

    return load


def report_inputs(study: StudyDir, spec: StudySpec | None = None):
    from analysis.study_report import ReportInputs
    from trainables.data import get_dataset_info
    from trainables.losses import loss_hparams

    spec = spec or load_study_of(study)
    try:
        names = list(get_dataset_info(spec.data.dataset).class_names)
    except ValueError:
        names = []
    return ReportInputs(study_dir=study.root, objectives=[(o.metric, o.mode) for o in spec.objectives],
                        name=spec.name, rungs=asha_rungs(spec), class_names=names,
                        load_matrix=matrix_loader(study), environment=study.meta().get("environment") or {},
                        resources=(spec.resources.cpu, spec.resources.gpu),
                        optuna_trials=lambda: optuna_trials_of(study, spec.name), declared=loss_hparams)


def optuna_trials_of(study: StudyDir, name: str) -> list:
    """The study's Optuna trials (of each method's own study under ``per_method``), or none (with a warning)
    when its storage cannot be read."""
    if study.optuna_storage == study.optuna_uri and not study.optuna_db.exists():
        return []  # (opening a missing SQLite file would create it)
    try:
        from study.optuna_bridge import optuna_trials

        return optuna_trials(study.optuna_storage, name)
    except Exception as err:  # noqa: BLE001 - the report goes on without the Optuna section
        warnings.warn(f"no Optuna section: could not read {study.optuna_storage} ({type(err).__name__}: {err})",
                      stacklevel=2)
        return []


def best_per_method(trials, objective: str, mode: str) -> tuple[dict[str, float], dict[str, str]]:
    """What the parent run shows of each method's best completed trial (by the final ``objective``): metrics
    ``best/<method>/<objective>`` and ``best/<method>/test/…``, and a tag ``best/<method>/trial_id``."""
    from analysis.core.tables import METHOD
    from analysis.leaderboard import best_trials

    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    for _, row in best_trials(trials, objective, mode).iterrows():
        method = str(row[METHOD])
        tags[f"best/{method}/trial_id"] = str(row["trial_id"])
        for key, value in row.items():
            if (key == objective or str(key).startswith("test/")) and isinstance(value, (int, float)) \
                    and not isinstance(value, bool) and np.isfinite(value):
                metrics[f"best/{method}/{key}"] = float(value)
    return metrics, tags


def log_report(study: StudyDir, files: list[Path], summary: tuple[dict, dict] | None = None) -> bool:
    """Logs the report files (and ``summary``: the best result per method) to the study's MLflow parent run;
    False (with a warning) when it cannot."""
    parent = run_map_of(study).get("parent")
    if parent is None:
        warnings.warn(f"no MLflow parent run of study {study.name} in {study.mlflow_uri}; the report is not "
                      "logged to MLflow", stacklevel=2)
        return False
    try:
        from mlflow import MlflowClient

        client = MlflowClient(mlflow_uri_of(study))
        if summary is not None:
            from study.sinks.mlflow import RunStore

            metrics, tags = summary
            RunStore.log_to(client, parent, metrics=metrics, tags=tags)
        for path in files:
            client.log_artifact(parent, str(path), artifact_path=REPORT_ARTIFACT_DIR)
    except Exception as err:  # noqa: BLE001 - MLflow is a view; the report on disk is what counts
        warnings.warn(f"could not log the report to MLflow ({type(err).__name__}: {err})", stacklevel=2)
        return False
    return True


def make_report(study: StudyDir, out: Path | None = None, echo: Callable[[str], None] | None = print) -> Path:
    from analysis.study_report import write_study_report
    from analysis.terminal_table import build_report, format_table
    from study.staging import staged
    from study.state import read_results
    from trainables.losses import loss_hparams

    spec = load_study_of(study)
    first = spec.objectives[0]
    for what in ("trials", "rerun_trials", "epochs"):  # every input loads before anything is written
        read_results(study, what)
    if echo:
        echo(format_table(build_report(study.root, objective=first.metric, mode=first.mode, declared=loss_hparams)))
    with staged(out or study.report_dir) as stage:
        files = write_study_report(report_inputs(study, spec), stage.scratch)
    summary = best_per_method(read_results(study, "trials"), first.metric, first.mode)
    log_report(study, [stage.final(files.markdown), stage.final(files.html)], summary)
    return stage.final(files.markdown)

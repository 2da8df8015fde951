"""`smoothstudy report`: the comparison of a study's methods, written next to its results and logged to the
study's MLflow parent run."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from analysis.core.layout import ANSWER_FILE, LEADERBOARD_FILE, StudyDir
from search_spaces.strategies import strategy_of
from search_spaces.study_file import StudySpec
from study.state import load_study_of

REPORT_ARTIFACT_DIR = "report"


def mlflow_uri_of(study: StudyDir) -> str:
    from study.sqlite_cache import study_tracking_uri

    return study_tracking_uri(study)


def run_map_of(study: StudyDir) -> dict:
    """The study's ``{"parent": run id, "trials": {trial id: run id}}`` in its tracking store, found by the
    runs' tags (empty when the store has no such experiment or cannot be reached)."""
    try:
        from mlflow import MlflowClient

        from study.sinks.mlflow_runs import find_study_runs

        client = MlflowClient(mlflow_uri_of(study))
        experiment = client.get_experiment_by_name(load_study_of(study).name)
        if experiment is None:
            return {}
        return find_study_runs(client, experiment.experiment_id, study.study_id)
    except Exception as err:  # noqa: BLE001 - MLflow is a view; callers fall back or warn
        warnings.warn(f"could not look up the study's MLflow runs ({type(err).__name__}: {err})", stacklevel=2)
        return {}


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
                        name=spec.name, rungs=strategy_of(spec).rungs(spec), class_names=names,
                        environment=study.meta().get("environment") or {},
                        resources=(spec.resources.cpu, spec.resources.gpu),
                        optuna_trials=lambda: optuna_trials_of(study, spec.name), declared=loss_hparams)


def optuna_trials_of(study: StudyDir, name: str) -> list:
    """The study's Optuna trials (of each method's own study under ``per_method``), or none (with a warning)
    when its storage cannot be read."""
    if study.optuna_storage == study.optuna_uri and not study.optuna_db.exists():
        return []  # (opening a missing SQLite file would create it)
    try:
        from study.optuna_store import optuna_trials

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


def answer_summary(answer) -> tuple[dict[str, float], dict[str, str]]:
    """What the parent run shows of the study's answer (``analysis.terminal_table.Answer``), when it has final
    runs: per method and column the mean over the shared seeds (``final/<method>/<key>``) and its 95% half-width
    (``final/<method>/<key>/ci95``); tags ``winner/<key>`` (the column's best, ``a ≈ b`` for a tie, ``none``
    when the paired test tells no method apart) and ``choice/<method>/<objective>`` (its selection noise,
    ``≈3 of 5``: not a significant choice)."""
    from analysis.core.catalogue import metric_info
    from analysis.terminal_table import NOT_CLEAR

    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    for objective, by_method in answer.noise.items():
        for method, noise in by_method.items():
            tags[f"choice/{method}/{objective}"] = noise.summary()
    if not answer.has_final_runs:
        return metrics, tags
    methods = len(answer.board.methods)
    for key in answer.columns:
        for m in answer.board.methods:
            iv = answer.board.interval(m.method, key)
            if np.isfinite(iv.mean):
                metrics[f"final/{m.method}/{key}"] = iv.mean
            if np.isfinite(iv.half_width):
                metrics[f"final/{m.method}/{key}/ci95"] = iv.half_width
        tied = answer.board.tied.get(key)
        if tied is not None and tied.best is not None and metric_info(key) is not None and methods > 1:
            tags[f"winner/{key}"] = f" {NOT_CLEAR} ".join(tied.tied) if tied.decided(methods) else "none"
    tags["final/seeds"] = str(answer.seeds)
    return metrics, tags




def answer_files(answer, folder: Path) -> list[Path]:
    """The answer as the terminal prints it (``answer.txt``) and as a table (``leaderboard.csv``: one row per
    method, each column's mean and half-width, its choice, whether it is marked best)."""
    import pandas as pd

    from analysis.terminal_table import format_answer

    text = folder / ANSWER_FILE
    text.write_text(format_answer(answer) + "\n")
    rows = []
    first = answer.noise.get(answer.objective, {})
    for method in answer.rows:
        m = next(x for x in answer.board.methods if x.method == method)
        row = {"method": method, "trial_id": m.trial_id, "source": m.source, "seeds": len(m.seeds),
               "choice": first[method].summary() if method in first else ""}
        row.update({f"hparam/{k}": v for k, v in m.hparams.items()})
        for key in answer.columns:
            iv = answer.board.interval(method, key)
            row.update({key: iv.mean, f"{key}/ci95": iv.half_width,
                        f"{key}/best": method in answer.board.best.get(key, set())})
        rows.append(row)
    table = folder / LEADERBOARD_FILE
    pd.DataFrame(rows).to_csv(table, index=False)
    return [text, table]


def study_answer(study: StudyDir, spec: StudySpec | None = None, declared=None):
    """The study's answer (``analysis.terminal_table.build_answer``) by its objectives."""
    from analysis.terminal_table import build_answer

    spec = spec or load_study_of(study)
    return build_answer(study.root, [(o.metric, o.mode) for o in spec.objectives], declared=declared)


def log_report(study: StudyDir, files: list[Path], summary: tuple[dict, dict] | None = None) -> bool:
    """Logs the report files (and ``summary``: metrics and tags of the parent run) to the study's MLflow
    parent run; False (with a warning) when it cannot."""
    parent = run_map_of(study).get("parent")
    if parent is None:
        warnings.warn(f"no MLflow parent run of study {study.name} in {study.mlflow_uri}; the report is not "
                      "logged to MLflow", stacklevel=2)
        return False
    try:
        from mlflow import MlflowClient

        client = MlflowClient(mlflow_uri_of(study))
        if summary is not None:
            from study.sinks.mlflow_runs import RunStore

            metrics, tags = summary
            RunStore.log_to(client, parent, metrics=metrics, tags=tags)
        for path in files:
            client.log_artifact(parent, str(path), artifact_path=REPORT_ARTIFACT_DIR)
    except Exception as err:  # noqa: BLE001 - MLflow is a view; the report on disk is what counts
        warnings.warn(f"could not log the report to MLflow ({type(err).__name__}: {err})", stacklevel=2)
        return False
    return True


def make_report(study: StudyDir, out: Path | None = None, echo: Callable[[str], None] | None = print) -> Path:
    """Writes the report, logs it and the answer to the MLflow parent run, and echoes the answer last."""
    from analysis.study_report import write_study_report
    from analysis.terminal_table import format_answer
    from study.staging import staged
    from study.state import read_results
    from trainables.losses import loss_hparams

    spec = load_study_of(study)
    first = spec.objectives[0]
    for what in ("trials", "rerun_trials", "epochs"):  # every input loads before anything is written
        read_results(study, what)
    answer = study_answer(study, spec, loss_hparams)
    with staged(out or study.report_dir) as stage:
        files = write_study_report(report_inputs(study, spec), stage.scratch)
        extra = answer_files(answer, stage.scratch)
    metrics, tags = best_per_method(read_results(study, "trials"), first.metric, first.mode)
    final_metrics, final_tags = answer_summary(answer)
    log_report(study, [stage.final(files.markdown), stage.final(files.html), *(stage.final(p) for p in extra)],
               ({**metrics, **final_metrics}, {**tags, **final_tags}))
    if echo:
        echo(format_answer(answer))
    return stage.final(files.markdown)

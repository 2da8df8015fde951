"""`smoothstudy report`: the comparison of a study's methods, written next to its results and logged to the
study's MLflow parent run."""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from search_spaces.schema import StudySpec
from study.layout import StudyDir
from study.progress import study_meta
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
    return study_meta(study).get("mlflow_uri") or study.default_mlflow_uri


def run_map_of(study: StudyDir) -> dict:
    """The study's {"parent": run id, "trials": {trial id: run id}} for its tracking URI (empty if none)."""
    if not study.run_map.exists():
        return {}
    try:
        maps = json.loads(study.run_map.read_text())
    except ValueError:
        return {}
    return maps.get(mlflow_uri_of(study)) or {}


def matrix_loader(study: StudyDir) -> Callable[[str, str], np.ndarray | None]:
    """Reads a trial's learned target matrix ``<method>_targets.npy``: from the trial's final Ray checkpoint
    under ``runs/<study>/ray`` when it is still there, else from its MLflow run's artifacts."""

    def load(trial_id: str, method: str) -> np.ndarray | None:
        name = f"{method}_targets.npy"
        local = sorted(study.ray.glob(f"*_{trial_id}_*/checkpoint_*/artifacts/{name}"))
        if local:
            return np.load(local[-1])
        from mlflow import MlflowClient

        run_id = run_map_of(study).get("trials", {}).get(trial_id)
        if run_id is None:
            return None
        with tempfile.TemporaryDirectory() as d:
            return np.load(MlflowClient(mlflow_uri_of(study)).download_artifacts(run_id, name, d))

    return load


def report_inputs(study: StudyDir, spec: StudySpec | None = None):
    from analysis.comparison import ReportInputs
    from trainables.data import get_dataset_info

    spec = spec or load_study_of(study)
    try:
        names = list(get_dataset_info(spec.data.dataset).class_names)
    except ValueError:
        names = []
    return ReportInputs(study_dir=study.root, objectives=[(o.metric, o.mode) for o in spec.objectives],
                        name=spec.name, rungs=asha_rungs(spec), class_names=names,
                        load_matrix=matrix_loader(study), environment=study_meta(study).get("environment") or {},
                        resources=(spec.resources.cpu, spec.resources.gpu))


def log_report(study: StudyDir, files: list[Path]) -> bool:
    """Logs the report files to the study's MLflow parent run; False (with a warning) when it cannot."""
    parent = run_map_of(study).get("parent")
    if parent is None:
        warnings.warn(f"no MLflow parent run in {study.run_map}; the report is not logged to MLflow", stacklevel=2)
        return False
    try:
        from mlflow import MlflowClient

        client = MlflowClient(mlflow_uri_of(study))
        for path in files:
            client.log_artifact(parent, str(path), artifact_path=REPORT_ARTIFACT_DIR)
    except Exception as err:  # noqa: BLE001 - MLflow is a view; the report on disk is what counts
        warnings.warn(f"could not log the report to MLflow ({type(err).__name__}: {err})", stacklevel=2)
        return False
    return True


def make_report(study: StudyDir, out: Path | None = None, echo: Callable[[str], None] | None = print) -> Path:
    from analysis.comparison import write_study_report
    from analysis.report import build_report, format_table
    from study.progress import read_results
    from study.staging import staged

    spec = load_study_of(study)
    first = spec.objectives[0]
    for what in ("trials", "rerun_trials", "epochs"):  # every input loads before anything is written
        read_results(study, what)
    if echo:
        echo(format_table(build_report(study.root, objective=first.metric, mode=first.mode)))
    with staged(out or study.report_dir) as stage:
        files = write_study_report(report_inputs(study, spec), stage.scratch)
    log_report(study, [stage.final(files.markdown), stage.final(files.html)])
    return stage.final(files.markdown)

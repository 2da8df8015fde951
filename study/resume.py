"""`smoothstudy resume`: continue an interrupted study where it stopped.

Ray restores its experiment state (trials, searcher, ASHA) and resumes unfinished trials from their last
checkpoints; the Optuna study lives in ``optuna.db`` under its own name, so the sampler keeps its history; the
MLflow sink finds each trial's run by its tags (wherever the study folder is now), and at the end what the
killed driver had not written to MLflow is back-filled from Parquet; Parquet keeps the epochs it already has. A study folder can be moved (or copied to another head node) and resumed there.
"""

from __future__ import annotations

import time
from pathlib import Path

from analysis.core.errors import UsageError
from analysis.core.layout import StudyDir
from study.ray_storage import ray_experiment_path
from study.runner import make_tuner
from study.state import is_finished, run_spec
from study.stop import sigint_restored


def resume_study(path: Path, address: str | None = None, echo=print) -> StudyDir:
    from ray import tune

    study = StudyDir(path.expanduser().absolute())
    spec = run_spec(study)  # the trainable must get the settings the study ran with
    meta = study.meta()
    if is_finished(study, spec):
        raise UsageError(f"study_dir={path}: every trial of study {spec.name} has ended; nothing to resume "
                         "(see 'smoothstudy status'; 'smoothstudy final' for its final runs, or start over with 'smoothstudy run --force')")
    experiment = ray_experiment_path(study, meta.get("ray_storage"))
    if not tune.Tuner.can_restore(experiment):
        raise UsageError(f"study_dir={path}: no Ray experiment state at {experiment} to resume from; "
                         "start the study with 'smoothstudy run'")
    from study.cluster import check_trial_resources, connect

    connect(address or meta.get("address"))
    check_trial_resources(spec.resources, spec.training.device)
    echo(f"resuming study {spec.name} from {experiment}")
    start = time.perf_counter()
    with sigint_restored():
        make_tuner(spec, study, meta.get("mlflow_uri"), restore=True, ray_storage=meta.get("ray_storage")).fit()
    echo(f"study {spec.name}: the search ran {time.perf_counter() - start:.1f} s")
    backfill_mlflow(study, echo)
    return study


def backfill_mlflow(study: StudyDir, echo=print) -> None:
    """MLflow is written by a process of the driver that may lag behind Parquet: what it had not written when
    the driver died (a trial that even ended then, which the resumed study never sees again) is back-filled
    from Parquet, as ``smoothstudy mlflow-sync`` does. MLflow out of reach is one line, not a failure."""
    from study.sinks.mlflow_sync import sync_study

    try:
        summary = sync_study(study)
    except Exception as err:  # noqa: BLE001 - the study itself is done and in Parquet
        echo(f"MLflow not back-filled ({type(err).__name__}: {err}); run `smoothstudy mlflow-sync {study.root}`")
        return
    echo(f"MLflow back-filled from Parquet: {summary}")

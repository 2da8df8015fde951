"""Builds and runs the Ray Tune experiment of a study: its searcher and ASHA (``study.search``, as the
study's search strategy puts them together), results streamed to Parquet and MLflow from the driver."""

from __future__ import annotations

import importlib
import json
import shutil
import threading
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

from analysis.core.errors import UsageError
from analysis.core.layout import RAY_DIR, StudyDir
from search_spaces.smoke import smoke_version
from search_spaces.strategies import strategy_of, trials_asked
from search_spaces.study_file import StudySpec, load_study
from study.ray_storage import check_ray_storage, ray_experiment_path, ray_storage_path
from study.state import TRIALS_ASKED
from study.stop import sigint_restored

# What the driver imports on its way to the first trial, in that order. Tune's fit() imports mlflow itself
# (its callback telemetry) before it asks Ray for the trials' workers: 1.1 s on the critical path.
DRIVER_MODULES = ("ray.tune", "optuna", "ray.tune.search.optuna", "mlflow", "pyarrow.parquet")


def _import_driver_modules() -> None:
    for name in DRIVER_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - reported by the import that needs it
            continue


def preload_driver_modules() -> None:
    """Import ``DRIVER_MODULES`` in a thread while the main thread checks the data and joins Ray (zlib, SQLite
    and sockets release the GIL). A module that fails here fails again, with its error, where it is used."""
    threading.Thread(target=_import_driver_modules, name="smoothstudy-preload", daemon=True).start()


def prepare_study_dir(study: StudyDir, study_file: Path) -> None:
    from study.replace import clear_study

    if study.root.exists():
        clear_study(study)  # the study's own files only, and only once check_replaceable accepted the folder
    study.root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(study_file, study.study_file)


def build_sinks(spec: StudySpec, study: StudyDir, mlflow_uri: str | None, settings: dict[str, Any]) -> list:
    """Parquet behind a background thread of the driver (waited for when Tune snapshots the experiment),
    MLflow and the Optuna link in a process of their own (``study.mlflow_group``), the progress line."""
    from search_spaces.space import method_examples
    from study.mlflow_group import MlflowGroup, mlflow_sinks
    from study.progress import progress_sink
    from study.sinks.background import BackgroundSinks
    from study.sinks.parquet import LIVE_TRIALS_EVERY_S, ParquetSink
    from trainables.config import flatten, resolve_trial_config

    base = spec.base_trial_config()
    configs = [flatten(resolve_trial_config(base, sampled)) for sampled in method_examples(spec)]
    parquet = ParquetSink(study.parquet, spec.name, configs, trials_every_s=LIVE_TRIALS_EVERY_S)
    first = spec.objectives[0]
    return [BackgroundSinks([parquet], "parquet"),
            mlflow_sinks(MlflowGroup.of_study(spec, study, mlflow_uri, settings)),
            progress_sink(parquet, trials_asked(spec), first.metric, first.mode)]


def make_tuner(spec: StudySpec, study: StudyDir, mlflow_uri: str | None, restore: bool = False,
               ray_storage: str | None = None):
    from ray import tune

    from study.callback import SinkCallback
    from study.search import build_scheduler, build_searcher, checkpoint_policy
    from study.tune_loggers import study_loggers
    from trainables.tune_adapter import train_trial

    base = spec.base_trial_config()
    settings = {"study": spec.model_dump(mode="json")}
    make_sinks = partial(build_sinks, spec, study, mlflow_uri, settings)
    trainable = tune.with_resources(
        tune.with_parameters(train_trial, base=base, objectives=tuple(o.metric for o in spec.objectives),
                             num_threads=max(1, int(spec.resources.cpu)), policy=checkpoint_policy(spec)),
        {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
    )
    run_config = tune.RunConfig(
        name=RAY_DIR,
        storage_path=ray_storage_path(study, ray_storage),
        callbacks=[SinkCallback(make_sinks, base, spec.training.epochs), *study_loggers()],
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),  # 1 forces a state snapshot per result
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        verbose=0,
    )
    if restore:
        from study.optuna_bridge import TruthfulOptunaSearch

        TruthfulOptunaSearch.storage_on_restore = study.optuna_storage  # the study may have moved
        return tune.Tuner.restore(ray_experiment_path(study, ray_storage), trainable=trainable, resume_unfinished=True, resume_errored=True)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=build_searcher(spec, study), scheduler=build_scheduler(spec),
                                    num_samples=trials_asked(spec),
                                    # a worker process per trial costs seconds of interpreter + torch start-up
                                    reuse_actors=True),
        run_config=run_config,
    )


def run_study(study_file: Path, storage: Path, address: str | None = None, mlflow_uri: str | None = None,
              smoke_test: bool = False, force: bool = False, echo=print, ray_storage: str | None = None,
              optuna_storage: str | None = None) -> StudyDir:
    spec = load_study(study_file)
    if smoke_test:
        spec = smoke_version(spec)
    study = StudyDir.of(storage, spec.name)
    ray_storage = check_ray_storage(ray_storage)
    preload_driver_modules()
    _check_data(spec)
    from study.cluster import check_trial_resources, connect
    from study.preflight import check_run
    from study.replace import check_replaceable

    check_run(spec, study, address, mlflow_uri, ray_storage)
    check_replaceable(study, force)

    joined = connect(address)  # recorded: resume and `rerun --parallel` go back to it
    check_trial_resources(spec.resources, spec.training.device)
    prepare_study_dir(study, study_file)
    study.meta_file.write_text(json.dumps({"study_id": uuid.uuid4().hex, "mlflow_uri": mlflow_uri,
                                           "optuna_storage": optuna_storage, "address": joined,
                                           "smoke_test": smoke_test, "ray_storage": ray_storage, "started": time.time(),
                                           TRIALS_ASKED: trials_asked(spec), "environment": study_environment()},
                                          indent=1))
    echo(f"study {spec.name}: {strategy_of(spec).describe(spec)}; files in {study.root}")
    start = time.perf_counter()
    with sigint_restored():
        make_tuner(spec, study, mlflow_uri, ray_storage=ray_storage).fit()
    echo(f"study {spec.name}: the search ran {time.perf_counter() - start:.1f} s")
    return study


def study_environment() -> dict[str, Any]:
    """What the study ran with, for the report's facts: package versions and the driver's machine (as
    ``analysis.facts`` gathers them for the report writer) and the Ray cluster it is connected to."""
    from analysis.facts import machine, versions
    from study.cluster import cluster_summary

    return {"versions": versions(), "driver": machine(), "cluster": cluster_summary()}


def _check_data(spec: StudySpec) -> None:
    """A missing data directory is bad input: refuse it before Ray starts."""
    from trainables.data import load_dataset

    try:
        load_dataset(spec.data.dataset, spec.data.data_dir, spec.data.download)
    except FileNotFoundError as err:
        raise UsageError(str(err).splitlines()[0]) from None

"""Builds and runs the Ray Tune experiment of a study: Optuna searchers (one per method under
``search.strategy: per_method``, one over the conditional space under ``joint``) + ASHA, results streamed to
Parquet and MLflow from the driver."""

from __future__ import annotations

import importlib
import json
import math
import shutil
import threading
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

from analysis.core.errors import UsageError
from analysis.core.layout import StudyDir
from search_spaces.space import define_by_run
from search_spaces.study_file import StudySpec, load_study, parse_study
from study.preflight import check_ray_storage

RAY_EXPERIMENT = "ray"  # the experiment directory under the storage path: runs/<study>/ray
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


SMOKE_IMAGES = 300  # training images of a smoke run (validation included)


def smoke_version(spec: StudySpec) -> StudySpec:
    """The same study, cut to seconds: 2 epochs, at most 4 trials (one per method when it has more
    methods, under ``per_method``), at most ``SMOKE_IMAGES`` training images, ASHA's grace period inside the 2 epochs, one
    final seed of each method's best, and on the CPU (a preset asking for a GPU is checked without one)."""
    epochs = min(spec.training.epochs, 2)
    subset = min(spec.data.subset or SMOKE_IMAGES, SMOKE_IMAGES) if spec.data.dataset != "digits" else spec.data.subset
    samples = min(spec.search.num_samples, 4)
    if spec.search.strategy == "per_method":
        samples = max(samples, len(spec.methods))
    device = "cpu" if spec.training.device == "cuda" else spec.training.device
    update: dict[str, Any] = {
        "name": spec.name,
        "data": spec.data.model_copy(update={"subset": subset}),
        "training": spec.training.model_copy(update={"epochs": epochs, "device": device}),
        "evaluation": spec.evaluation.model_copy(update={"probe_max_train": min(spec.evaluation.probe_max_train, 500)}),
        "search": spec.search.model_copy(update={"num_samples": samples}),
        "asha": spec.asha.model_copy(update={"max_t": None,
                                             "grace_period": min(spec.asha.grace_period, max(1, epochs - 1))}),
        "resources": spec.resources.model_copy(update={"gpu": 0}) if device != spec.training.device else spec.resources,
    }
    if spec.final is not None:
        update["final"] = spec.final.model_copy(update={"top": 1, "seeds": 1})
    smoke = spec.model_copy(update=update)
    return parse_study(smoke.model_dump(mode="json"))  # the cut study passes the same checks


def search_plan(spec: StudySpec) -> str:
    """The run's first line: how many trials of which methods, and each method's budget."""
    if spec.search.strategy == "joint":
        return (f"{spec.search.num_samples} trials of {', '.join(spec.methods)} (strategy joint: the "
                f"{spec.search.sampler} sampler picks the method)")
    from search_spaces.space import search_budgets

    budgets = search_budgets(spec)
    unused = spec.search.num_samples - budgets.total
    return (f"{budgets.total} trials (strategy per_method, {spec.search.sampler} in each method's space), "
            f"{budgets.describe()}" + (f"; {unused} of num_samples unused: every grid is covered" if unused else ""))


def prepare_study_dir(study: StudyDir, study_file: Path) -> None:
    from study.replace import clear_study

    if study.root.exists():
        clear_study(study)  # the study's own files only, and only once check_replaceable accepted the folder
    study.root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(study_file, study.study_file)


def build_searcher(spec: StudySpec, study: StudyDir):
    """``joint``: one Optuna study over the method and its hyperparameters; ``per_method``: one per method
    (named ``<study>.<method>``), each asked only for its budget of trials."""
    import optuna
    from ray.tune.search import ConcurrencyLimiter

    from search_spaces.budgets import interleave
    from search_spaces.space import search_budgets
    from study.optuna_bridge import TruthfulOptunaSearch
    from study.per_method import PerMethodSearch
    from study.samplers import make_sampler
    from study.sqlite_cache import make_parent_folder

    seed = spec.search.seed if spec.search.seed is not None else spec.seed
    objectives = spec.objectives
    multi = len(objectives) > 1
    metric = [o.metric for o in objectives] if multi else objectives[0].metric
    mode = [o.mode for o in objectives] if multi else objectives[0].mode
    make_parent_folder(study.optuna_storage)

    def searcher(name: str, method: str | None, startup: int) -> TruthfulOptunaSearch:
        return TruthfulOptunaSearch(
            epochs=spec.training.epochs, space=define_by_run(spec, method), metric=metric, mode=mode,
            sampler=make_sampler(spec.search.sampler, seed, startup), study_name=name,
            storage=optuna.storages.RDBStorage(study.optuna_storage),
        )

    if spec.search.strategy == "joint":
        search = searcher(spec.name, None, spec.search.n_startup_trials)
    else:
        budgets = search_budgets(spec)  # n_startup_trials: random trials of each method before its TPE models
        search = PerMethodSearch({m: searcher(f"{spec.name}.{m}", m, spec.search.n_startup_trials)
                                  for m in budgets.trials},
                                 interleave(budgets), metric, mode, seed=spec.seed, trial_seeds=spec.search.trial_seed)
    return ConcurrencyLimiter(search, max_concurrent=spec.search.max_concurrent)


def trials_asked(spec: StudySpec) -> int:
    """The search trials Tune runs: ``num_samples``, or less when ``per_method`` grids are all covered."""
    if spec.search.strategy == "joint":
        return spec.search.num_samples
    from search_spaces.space import search_budgets

    return search_budgets(spec).total


def build_scheduler(spec: StudySpec):
    """ASHA on the first objective: its rungs compare a trial with the trials of its own method
    (``per_method``) or with every trial (``joint``)."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from study.per_method import PerMethodASHA

    if not spec.asha.enabled:
        return FIFOScheduler()
    first = spec.objectives[0]
    make = partial(ASHAScheduler, time_attr="epoch", metric=first.metric, mode=first.mode,
                   max_t=spec.asha.max_t or spec.training.epochs, grace_period=spec.asha.grace_period,
                   reduction_factor=spec.asha.reduction_factor)
    return make() if spec.search.strategy == "joint" else PerMethodASHA(make)


def asha_decision_epochs(spec: StudySpec) -> frozenset[int]:
    """The epochs at which ASHA compares a trial with its rung and may stop it: ``grace_period · rf^k`` below
    ``max_t`` (a trial reaches a rung at the first epoch at or past it)."""
    if not spec.asha.enabled:
        return frozenset()
    max_t = spec.asha.max_t or spec.training.epochs
    rungs, milestone = set(), float(spec.asha.grace_period)
    while milestone < max_t:
        rungs.add(math.ceil(milestone))
        milestone *= spec.asha.reduction_factor
    return frozenset(rungs)


def checkpoint_policy(spec: StudySpec):
    from trainables.tune_reporting import CheckpointPolicy

    return CheckpointPolicy(every_epochs=spec.checkpoint.every_epochs, every_s=spec.checkpoint.every_s,
                            decision_epochs=asha_decision_epochs(spec))


def mlflow_group(spec: StudySpec, study: StudyDir, mlflow_uri: str | None, settings: dict[str, Any]):
    from study.mlflow_group import MlflowGroup

    return MlflowGroup(mlflow_uri or study.default_mlflow_uri, experiment=spec.name, study_name=spec.name,
                       study_file=study.study_file, settings=settings, study_id=study.study_id,
                       optuna_storage=study.optuna_storage)


def build_sinks(spec: StudySpec, study: StudyDir, mlflow_uri: str | None, settings: dict[str, Any]) -> list:
    """Parquet behind a background thread of the driver (flushed at checkpoints), MLflow and the Optuna link
    in a process of their own (``study.mlflow_group``), the progress line."""
    from search_spaces.space import method_examples
    from study.mlflow_group import mlflow_sinks
    from study.progress import progress_sink
    from study.sinks.background import BackgroundSinks
    from study.sinks.parquet import LIVE_TRIALS_EVERY_S, ParquetSink
    from trainables.config import flatten, resolve_trial_config

    base = spec.base_trial_config()
    configs = [flatten(resolve_trial_config(base, sampled)) for sampled in method_examples(spec)]
    parquet = ParquetSink(study.parquet, spec.name, configs, trials_every_s=LIVE_TRIALS_EVERY_S)
    first = spec.objectives[0]
    return [BackgroundSinks([parquet], "parquet"),
            mlflow_sinks(mlflow_group(spec, study, mlflow_uri, settings)),
            progress_sink(parquet, spec.search.num_samples, first.metric, first.mode)]


def ray_storage_path(study: StudyDir, ray_storage: str | None) -> str:
    """Where Ray keeps the study's checkpoints and experiment state: ``runs/<study>/`` unless ``ray_storage``
    names a directory every node sees or an object store URI (``s3://bucket/prefix``, via pyarrow)."""
    if not ray_storage:
        return str(study.root)
    return f"{ray_storage.rstrip('/')}/{study.name}"


def ray_experiment_path(study: StudyDir, ray_storage: str | None) -> str:
    return f"{ray_storage_path(study, ray_storage)}/{RAY_EXPERIMENT}"


def make_tuner(spec: StudySpec, study: StudyDir, mlflow_uri: str | None, restore: bool = False,
               ray_storage: str | None = None):
    from ray import tune

    from study.callback import SinkCallback
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
        name=RAY_EXPERIMENT,
        storage_path=ray_storage_path(study, ray_storage),
        callbacks=[SinkCallback(make_sinks, base, spec.training.epochs), *study_loggers()],
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),  # 1 forces a state snapshot per result
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        verbose=0,
    )
    if restore:
        from study.optuna_bridge import TruthfulOptunaSearch
        from study.renamed_modules import alias_renamed_modules

        alias_renamed_modules()  # the pickled tuner and searcher of a study an earlier release started
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
                                           "environment": study_environment()}, indent=1))
    echo(f"study {spec.name}: {search_plan(spec)}; files in {study.root}")
    start = time.perf_counter()
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


def load_study_of(study: StudyDir) -> StudySpec:
    if not study.study_file.exists():
        raise UsageError(f"{study.root} is not a study directory (no study.yaml); run 'smoothstudy run' first")
    return load_study(study.study_file)

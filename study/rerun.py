"""`smoothstudy rerun`: retrain chosen configurations of a study with the very same training loop and new
seeds, results to Parquet (``parquet/reruns/``) and MLflow runs tagged ``rerun``.

The i-th rerun of every configuration trains with seed ``study seed + RERUN_SEED_OFFSET + i``, whatever its
method: reruns of different methods share their seeds, so the report pairs them seed by seed. A (configuration,
seed) pair is trained once: a rerun whose seed that configuration has already completed, as a rerun or as one of
the study's final runs (which use the same seeds), is not trained again, and ``--seeds N`` with N above the seeds
recorded adds the next ones.

Locally (default) the reruns train one after the other in this process; with ``parallel=True`` each is a Ray
task asking for the study's ``resources`` on the cluster named by ``address``, else ``RAY_ADDRESS``, else the
cluster address the study recorded when it joined one (a local Ray is used when that one is unreachable),
else a local Ray. Either way the driver alone writes the sinks, and a rerun uses as many torch threads as a
search trial had CPUs, so on CPU the same seed gives the same numbers locally and on Ray.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.core.catalogue import HEADLINE
from analysis.core.errors import UsageError
from analysis.core.layout import StudyDir
from analysis.core.statuses import TrialStatus
from analysis.core.tables import FINAL_KIND
from analysis.formatting import hparams_text, kind_words
from search_spaces.study_file import MAX_FINAL, MAX_NUM_SAMPLES
from study.sinks.base import TrialEnd, TrialStart
from study.state import load_study_of
from trainables.config import TrialConfig, config_from_flat, flatten

# Above every search trial's seed (trial n: study seed + n, n < num_samples <= MAX_NUM_SAMPLES, plus re-asks).
RERUN_SEED_OFFSET = 10 * MAX_NUM_SAMPLES
MAX_RERUNS = MAX_FINAL  # --top and --seeds each, as final.top and final.seeds


def select_trials(trials: pd.DataFrame, objective: str, mode: str, trial: str, top: int) -> pd.DataFrame:
    """The trial with id ``trial``, or the ``top`` best completed trials of each method by the final
    ``objective`` (the same rule the report's leaderboard uses)."""
    from analysis.leaderboard import best_trials

    if trial != "best":
        chosen = trials[trials["trial_id"] == trial]
        if chosen.empty:
            raise UsageError(f"trial={trial!r} is not a trial of this study; allowed: best, "
                             + ", ".join(trials["trial_id"].astype(str)))
        return chosen
    if top < 1:
        raise UsageError(f"top={top} is not allowed; allowed: an integer >= 1")
    chosen = best_trials(trials, objective, mode, top)
    if chosen.empty:
        raise UsageError("no completed trial to rerun yet; see 'smoothstudy status'")
    return chosen


def rerun_seeds(study_seed: int, seeds: int) -> list[int]:
    """The seeds of a configuration's reruns: the same list for every configuration of the study."""
    return [study_seed + RERUN_SEED_OFFSET + i for i in range(seeds)]


def rerun_configs(rows: pd.DataFrame, seeds: int, epochs: int | None, device: str, study_seed: int,
                  train_on: str = "train") -> list[tuple[str, TrialConfig]]:
    """``(source trial id, config)`` for every rerun of every row, with the seeds of ``rerun_seeds``, trained
    on the training split or on training and validation splits (``train_on``)."""
    out = []
    for _, row in rows.iterrows():
        flat = {k.removeprefix("config/"): v for k, v in row.items() if k.startswith("config/")}
        source = config_from_flat(flat)
        for seed in rerun_seeds(study_seed, seeds):
            overrides: dict[str, Any] = {"seed": seed, "device": device, "train_on": train_on}
            if epochs:
                overrides["epochs"] = epochs
            out.append((str(row["trial_id"]), TrialConfig.from_dict({**source.to_dict(), **overrides})))
    return out


def rerun(study: StudyDir, trial: str = "best", top: int = 1, seeds: int = 1, epochs: int | None = None,
          device: str = "auto", parallel: bool = False, address: str | None = None,
          echo: Callable[[str], None] = print, kind: str = "rerun", spec: Any = None,
          gpus: float | None = None, chosen: pd.DataFrame | None = None, train_on: str = "train"
          ) -> list[dict[str, Any]]:
    """Retrains and records the chosen configurations; returns one dict per rerun (``trial_id``, ``status``,
    ``source_trial`` and its final metrics). ``kind`` names the runs and tags them (``final``: the study's own
    final runs, study.final); runs of that kind already completed are not trained again. ``spec``: the study
    as it ran (its smoke version for a smoke test); ``gpus``: per run on Ray (default: the study's);
    ``chosen``: the trials rows to retrain, when the caller chose them (else ``trial`` and ``top`` choose)."""
    from analysis.results import reruns_dir
    from study.mlflow_group import MlflowGroup, mlflow_sinks
    from study.sinks.parquet import ParquetSink
    from study.state import read_results

    if not 1 <= seeds <= MAX_RERUNS:
        raise UsageError(f"seeds={seeds} is not allowed; allowed: an integer in [1, {MAX_RERUNS}]")
    if not 1 <= top <= MAX_RERUNS:
        raise UsageError(f"top={top} is not allowed; allowed: an integer in [1, {MAX_RERUNS}]")
    if epochs is not None and epochs < 1:
        raise UsageError(f"epochs={epochs} is not allowed; allowed: an integer >= 1")
    spec = spec or load_study_of(study)
    if chosen is None:
        first = spec.objectives[0]
        chosen = select_trials(read_results(study, "trials"), first.metric, first.mode, trial, top)
    done = completed_runs(study)
    asked = [(s, c) for s, c in rerun_configs(chosen, seeds, epochs, device, spec.seed, train_on)
             if _run_id(s, c, kind) not in done]
    trained = {} if kind == FINAL_KIND else completed_seeds(study)  # the final runs keep their own seeds
    jobs = [(s, c) for s, c in asked if (s, c.seed) not in trained]
    if len(jobs) < len(asked):
        kinds = sorted({kind_words(trained[(s, c.seed)]) for s, c in asked if (s, c.seed) in trained})
        most = max(sum(1 for (src, _), _kind in trained.items() if src == s) for s, _ in asked)
        echo(f"{len(asked) - len(jobs)} of the {len(asked)} (configuration, seed) pairs asked for are already "
             f"trained (as {' and '.join(kinds)}) and are not trained again; --seeds {most + 1} adds a new seed "
             "to each configuration")
    if not jobs:
        echo(f"all {kind_words(kind)} asked for are already recorded")
        return []
    if not parallel:
        echo(f"{len(jobs)} {kind_words(kind)} to train here, one after the other")
    # the study's own store, pointed at this folder (RunStore does that too); one that is gone is made anew here,
    # as the tests that rerun a folder of Parquet files only rely on
    mlflow = mlflow_sinks(MlflowGroup.of_study(spec, study, study.mlflow_uri, {"study": spec.model_dump(mode="json")}),
                          live=False)
    sinks = [ParquetSink(reruns_dir(study.root), spec.name), mlflow]
    threads = max(1, int(spec.resources.cpu))
    try:
        if parallel:
            if gpus is None:
                gpus = spec.resources.gpu if device != "cpu" else 0
            connect_for_reruns(study, address, echo)
            return _run_on_ray(jobs, sinks, spec.resources.cpu, gpus, threads, echo, kind)
        return _run_here(jobs, sinks, threads, echo, kind)
    finally:
        for sink in sinks:
            sink.close()


def _train(cfg: TrialConfig, threads: int) -> tuple[list[dict[str, Any]], Any, str, tuple[float, float]]:
    """``(epoch metrics, final evaluation or None, reason it diverged, (started, ended))``, the times as
    ``time.time()`` where it ran; importable by Ray workers."""
    import torch

    from trainables.loop import run_local
    from trainables.trainer import TrainingDiverged

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    history: list[dict[str, Any]] = []
    started = time.time()
    try:
        _, final = run_local(cfg, on_epoch=history.append)
    except TrainingDiverged as err:
        return history, None, str(err), (started, time.time())
    finally:
        torch.set_num_threads(before)
    return history, final, "", (started, time.time())


def completed_runs(study: StudyDir) -> set[str]:
    """Ids of the reruns (and final runs) the study has recorded as completed."""
    from analysis.results import read_rerun_trials

    runs = read_rerun_trials(study.root)
    if runs.empty or "status" not in runs:
        return set()
    return set(runs.loc[runs["status"] == TrialStatus.COMPLETED, "trial_id"].astype(str))


def completed_seeds(study: StudyDir) -> dict[tuple[str, int], str]:
    """``(source trial, seed) -> kind`` of every completed rerun and final run the study has recorded."""
    from analysis.core.tables import KIND_TAG, SEED, SOURCE_TAG
    from analysis.results import read_rerun_trials

    runs = read_rerun_trials(study.root)
    if runs.empty or not {"status", SEED, SOURCE_TAG} <= set(runs.columns):
        return {}
    done = runs[(runs["status"] == TrialStatus.COMPLETED) & runs[SEED].notna()]
    kinds = done[KIND_TAG].astype(str) if KIND_TAG in done else pd.Series("rerun", index=done.index)
    return {(str(src), int(seed)): kind for src, seed, kind in zip(done[SOURCE_TAG], done[SEED], kinds)}


def connect_for_reruns(study: StudyDir, address: str | None, echo: Callable[[str], None]) -> None:
    """Joins ``address``, else ``RAY_ADDRESS``, else the cluster the study recorded (only an address it was
    given: a Ray the study started itself ended with it), else starts a local Ray; a recorded cluster that is
    unreachable now falls back to a local Ray with a note. A driver already connected (the study's own, for
    its final runs) stays on its cluster."""
    import ray

    from study.cluster import connect, reachable

    if ray.is_initialized():
        return
    if address or os.environ.get("RAY_ADDRESS"):
        connect(address)
        return
    recorded = study.meta().get("address")
    if recorded:
        try:
            if reachable(recorded):
                connect(recorded)
                echo(f"reruns on the study's cluster {recorded}")
                return
        except ConnectionError:
            pass
        echo(f"the study's cluster {recorded} is unreachable; reruns on a local Ray instead (--address picks one)")
    connect(None)


def _run_here(jobs: list[tuple[str, TrialConfig]], sinks: list, threads: int, echo: Callable[[str], None],
              kind: str) -> list[dict[str, Any]]:
    from study.progress import runs_line

    started, out = time.monotonic(), []
    for source, cfg in jobs:
        out.append(_record(source, cfg, sinks, echo, *_train(cfg, threads), kind=kind))
        echo(runs_line(kind_words(kind), len(out), len(jobs), time.monotonic() - started))
    return out


def _run_on_ray(jobs: list[tuple[str, TrialConfig]], sinks: list, cpus: float, gpus: float, threads: int,
                echo: Callable[[str], None], kind: str = "rerun") -> list[dict[str, Any]]:
    import ray

    from study.progress import runs_line

    remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=1)(_train)
    pending = {remote.remote(cfg, threads): (source, cfg) for source, cfg in jobs}
    echo(f"{len(pending)} {kind_words(kind)} submitted to Ray ({cpus:g} CPU, {gpus:g} GPU each)")
    results: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        source, cfg = pending.pop(done[0])
        out = _record(source, cfg, sinks, echo, *ray.get(done[0]), kind=kind)
        results[out["trial_id"]] = out
        echo(runs_line(kind_words(kind), len(results), len(jobs), time.monotonic() - started))
    order = [_run_id(source, cfg, kind) for source, cfg in jobs]  # submission order, whatever finished first
    return [results[r] for r in order]


def _run_id(source_trial: str, cfg: TrialConfig, kind: str = "rerun") -> str:
    return f"{kind}-{source_trial}-seed{cfg.seed}"


def _record(source_trial: str, cfg: TrialConfig, sinks: list, echo: Callable[[str], None],
            history: list[dict[str, Any]], final: Any, reason: str, span: tuple[float, float],
            kind: str = "rerun") -> dict[str, Any]:
    """Hands a finished run to the sinks, with the times it ran (``span``), not the time it is recorded."""
    from trainables.artifacts import write_trial_artifacts

    run_id = _run_id(source_trial, cfg, kind)
    started, ended = span
    start = TrialStart(run_id, flatten(cfg.to_dict()), tags={"kind": kind, "source_trial": source_trial},
                       at=started)
    for sink in sinks:
        sink.trial_started(start)
    for metrics in history:
        for sink in sinks:
            sink.epoch(run_id, int(metrics["epoch"]), {k: v for k, v in metrics.items() if "/" in k})
    if final is None:
        for sink in sinks:
            sink.trial_ended(TrialEnd(run_id, TrialStatus.DIVERGED, reason, at=ended))
        echo(f"{run_id}: diverged ({reason})")
        return {"trial_id": run_id, "status": TrialStatus.DIVERGED, "source_trial": source_trial}
    last = history[-1] if history else {}
    metrics = {**{k: v for k, v in last.items() if "/" in k}, **final.metrics}
    with tempfile.TemporaryDirectory() as d:
        artifacts = write_trial_artifacts(final, Path(d) / "artifacts")
        for sink in sinks:
            sink.trial_ended(TrialEnd(run_id, TrialStatus.COMPLETED, "", metrics, artifacts, at=ended))
    shown = "  ".join(f"{k}={metrics[k]:.4f}" for k in HEADLINE if k in metrics and not math.isnan(metrics[k]))
    from analysis.leaderboard import used_params
    from trainables.losses import loss_hparams

    echo(f"{run_id} ({cfg.loss} {hparams_text(used_params(cfg.loss, cfg.loss_params, loss_hparams))}): {shown}")
    return {"trial_id": run_id, "status": TrialStatus.COMPLETED, "source_trial": source_trial, **metrics}

"""`smoothstudy rerun`: retrain chosen configurations of a study locally, with the very same training loop,
new seeds, results to Parquet (``parquet/reruns/``) and MLflow runs tagged ``rerun``."""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from study.errors import UsageError
from study.layout import StudyDir
from study.runner import load_study_of
from study.sinks.base import TrialEnd, TrialStart
from trainables.config import TrialConfig, config_from_flat, flatten

RERUN_SEED_OFFSET = 1000  # rerun seeds never coincide with the search's seed


def select_trials(trials: pd.DataFrame, objective: str, mode: str, trial: str, top: int) -> pd.DataFrame:
    """The trial with id ``trial``, or the ``top`` best completed trials of each method by ``objective``."""
    if trial != "best":
        chosen = trials[trials["trial_id"] == trial]
        if chosen.empty:
            raise UsageError(f"trial={trial!r} is not a trial of this study; allowed: best, "
                             + ", ".join(trials["trial_id"].astype(str)))
        return chosen
    if top < 1:
        raise UsageError(f"top={top} is not allowed; allowed: an integer >= 1")
    column = f"best/{objective}" if f"best/{objective}" in trials else objective
    done = trials[(trials["status"] == "completed") & trials[column].notna()]
    if done.empty:
        raise UsageError("no completed trial to rerun yet; see 'smoothstudy status'")
    ordered = done.sort_values(column, ascending=(mode == "min"))
    return ordered.groupby("config/loss", sort=False).head(top)


def rerun(study: StudyDir, trial: str = "best", top: int = 1, seeds: int = 1, epochs: int | None = None,
          device: str = "auto", parallel: bool = False, address: str | None = None,
          echo: Callable[[str], None] = print) -> list[dict[str, Any]]:
    from analysis.results import read_trials
    from study.runner import build_sinks
    from study.sinks.parquet import ParquetSink

    if seeds < 1:
        raise UsageError(f"seeds={seeds} is not allowed; allowed: an integer >= 1")
    if epochs is not None and epochs < 1:
        raise UsageError(f"epochs={epochs} is not allowed; allowed: an integer >= 1")
    spec = load_study_of(study)
    first = spec.objectives[0]
    rows = select_trials(read_trials(study.root), first.metric, first.mode, trial, top)
    meta = json.loads(study.meta_file.read_text()) if study.meta_file.exists() else {}
    mlflow_sink = build_sinks(spec, study, meta.get("mlflow_uri"), {"study": spec.model_dump(mode="json")})[1]
    sinks = [ParquetSink(study.parquet / "reruns", spec.name), mlflow_sink]
    results = []
    for _, row in rows.iterrows():
        flat = {k.removeprefix("config/"): v for k, v in row.items() if k.startswith("config/")}
        source = config_from_flat(flat)
        for i in range(seeds):
            overrides: dict[str, Any] = {"seed": source.seed + RERUN_SEED_OFFSET + i, "device": device}
            if epochs:
                overrides["epochs"] = epochs
            cfg = TrialConfig.from_dict({**source.to_dict(), **overrides})
            results.append(_run_one(cfg, str(row["trial_id"]), sinks, echo))
    for sink in sinks:
        sink.close()
    return results


def _run_one(cfg: TrialConfig, source_trial: str, sinks: list, echo: Callable[[str], None]) -> dict[str, Any]:
    from trainables.artifacts import write_trial_artifacts
    from trainables.loop import TrainingDiverged, run_local

    run_id = f"rerun-{source_trial}-seed{cfg.seed}"
    start = TrialStart(run_id, flatten(cfg.to_dict()), tags={"kind": "rerun", "source_trial": source_trial})
    for sink in sinks:
        sink.trial_started(start)

    def on_epoch(metrics: dict[str, Any]) -> None:
        for sink in sinks:
            sink.epoch(run_id, int(metrics["epoch"]), {k: v for k, v in metrics.items() if "/" in k})

    try:
        history, final = run_local(cfg, on_epoch=on_epoch)
    except TrainingDiverged as err:
        for sink in sinks:
            sink.trial_ended(TrialEnd(run_id, "diverged", str(err)))
        echo(f"{run_id}: diverged ({err})")
        return {"trial_id": run_id, "status": "diverged"}
    metrics = {**{k: v for k, v in history[-1].items() if "/" in k}, **final.metrics}
    with tempfile.TemporaryDirectory() as d:
        artifacts = write_trial_artifacts(final, Path(d) / "artifacts")
        for sink in sinks:
            sink.trial_ended(TrialEnd(run_id, "completed", "", metrics, artifacts))
    shown = "  ".join(f"{k}={metrics[k]:.4f}" for k in ("test/acc", "test/nll", "test/ece", "test/aurc")
                      if k in metrics and not math.isnan(metrics[k]))
    echo(f"{run_id} ({cfg.loss} {cfg.loss_params}): {shown}")
    return {"trial_id": run_id, "status": "completed", **metrics}

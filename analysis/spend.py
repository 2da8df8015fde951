"""What the search spent on each method: trials, how many ASHA stopped, epochs, CPU- and GPU-seconds.

Seconds are each trial's wall time (start to end, as the sinks recorded it) times the CPUs and GPUs it
reserved (``resources``), i.e. reserved device time, not measured utilisation."""

from __future__ import annotations

import pandas as pd

from analysis.core.statuses import TrialStatus
from analysis.core.tables import METHOD
from analysis.document import Table


def spend_by_method(trials: pd.DataFrame, cpu: float, gpu: float) -> pd.DataFrame:
    """One row per method: ``trials, completed, stopped, epochs, cpu_s, gpu_s`` (seconds NaN when unknown)."""
    if trials.empty or METHOD not in trials:
        return pd.DataFrame(columns=["method", "trials", "completed", "stopped", "epochs", "cpu_s", "gpu_s"])
    frame = trials.assign(
        _epochs=pd.to_numeric(trials.get("epochs_run", pd.Series(0, index=trials.index)), errors="coerce").fillna(0),
        _seconds=_seconds(trials),
    )
    rows = []
    for method, group in frame.groupby(frame[METHOD].astype(str), sort=True):
        seconds = group["_seconds"].sum(min_count=1)
        rows.append({"method": method, "trials": len(group), "completed": int((group["status"] == TrialStatus.COMPLETED).sum()),
                     "stopped": int((group["status"] == TrialStatus.STOPPED).sum()), "epochs": int(group["_epochs"].sum()),
                     "cpu_s": seconds * cpu, "gpu_s": seconds * gpu})
    return pd.DataFrame(rows)


def _seconds(trials: pd.DataFrame) -> pd.Series:
    if not {"started_at", "ended_at"} <= set(trials.columns):
        return pd.Series(float("nan"), index=trials.index)
    start = pd.to_datetime(trials["started_at"], utc=True)
    end = pd.to_datetime(trials["ended_at"], utc=True)
    return (end - start).dt.total_seconds()


def spend_table(spend: pd.DataFrame) -> Table:
    def sec(v: float) -> str:
        return "–" if pd.isna(v) else f"{v:.0f}"

    rows = [[r.method, str(r.trials), str(r.completed), str(r.stopped), str(r.epochs), sec(r.cpu_s), sec(r.gpu_s)]
            for r in spend.itertuples()]
    return Table(["method", "search trials", "completed", "stopped by ASHA", "epochs", "CPU-seconds", "GPU-seconds"],
                 rows)

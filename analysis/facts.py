"""Study facts for the report: trials by outcome, compute used, software versions and the machine."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from dataclasses import dataclass, field

import pandas as pd

FAILED = ("error", "diverged")
PACKAGES = ("torch", "ray", "optuna", "mlflow", "numpy", "pandas", "pyarrow", "scipy", "matplotlib")


@dataclass
class StudyFacts:
    trials: int
    completed: int
    stopped: int  # by ASHA
    failed: int  # error or diverged
    running: int
    trial_epochs: int
    wall_time_s: float  # first trial start to last trial end
    trial_time_s: float  # summed over trials (exceeds the wall time with concurrent trials)
    reruns: int = 0
    rerun_epochs: int = 0
    versions: dict[str, str] = field(default_factory=dict)
    machine: dict[str, str] = field(default_factory=dict)


def study_facts(trials: pd.DataFrame, reruns: pd.DataFrame | None = None) -> StudyFacts:
    status = trials["status"].fillna("unknown") if "status" in trials else pd.Series(dtype=str)
    epochs = int(pd.to_numeric(trials.get("epochs_run", pd.Series(dtype=float)), errors="coerce").fillna(0).sum())
    wall = trial_time = float("nan")
    if {"started_at", "ended_at"} <= set(trials.columns) and trials["ended_at"].notna().any():
        start, end = pd.to_datetime(trials["started_at"], utc=True), pd.to_datetime(trials["ended_at"], utc=True)
        wall = (end.max() - start.min()).total_seconds()
        trial_time = float((end - start).dt.total_seconds().sum())
    reruns = reruns if reruns is not None else pd.DataFrame()
    rerun_epochs = int(pd.to_numeric(reruns.get("epochs_run", pd.Series(dtype=float)), errors="coerce")
                       .fillna(0).sum())
    return StudyFacts(
        trials=len(trials),
        completed=int((status == "completed").sum()),
        stopped=int((status == "stopped").sum()),
        failed=int(status.isin(FAILED).sum()),
        running=int((status == "running").sum()),
        trial_epochs=epochs,
        wall_time_s=wall,
        trial_time_s=trial_time,
        reruns=len(reruns),
        rerun_epochs=rerun_epochs,
        versions=versions(),
        machine=machine(),
    )


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine() -> dict[str, str]:
    out = {"platform": platform.platform(), "cpu": _cpu_model(), "cores": str(os.cpu_count() or "?")}
    try:
        import torch

        if torch.cuda.is_available():
            out["gpu"] = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except Exception:  # noqa: BLE001 - a broken CUDA setup must not stop the report
        pass
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"

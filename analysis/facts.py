"""Study facts for the report: trials by outcome, compute used, software versions and the machine.

Versions, machine and cluster are the ones the study recorded when it started (``study.json``); a study from
before that was recorded gets those of the process writing the report, labelled as such."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from analysis.core.statuses import BROKEN, TrialStatus
from analysis.core.tables import FINAL_KIND, KIND_TAG

FAILED = (*BROKEN, TrialStatus.LOST)  # a lost trial never finished either
PACKAGES = ("torch", "ray", "optuna", "mlflow", "pyarrow", "timm", "numpy", "pandas", "scipy", "matplotlib")
STUDY, REPORT_WRITER = "study", "report writer"  # where the versions and machine facts come from


@dataclass
class StudyFacts:
    trials: int
    completed: int
    stopped: int  # by ASHA
    failed: int  # error, diverged or lost
    running: int
    trial_epochs: int
    wall_time_s: float  # first trial start to last trial end
    trial_time_s: float  # summed over trials (exceeds the wall time with concurrent trials)
    reruns: int = 0  # retrained runs of every kind: the final runs and a user's reruns
    rerun_epochs: int = 0
    final_runs: int = 0  # of them, the study's final runs
    versions: dict[str, str] = field(default_factory=dict)
    machine: dict[str, str] = field(default_factory=dict)  # the study's driver, or the report writer's
    cluster: dict[str, Any] = field(default_factory=dict)  # the Ray cluster the study ran on (when recorded)
    environment_of: str = REPORT_WRITER  # STUDY or REPORT_WRITER


def study_facts(trials: pd.DataFrame, reruns: pd.DataFrame | None = None,
                environment: dict[str, Any] | None = None) -> StudyFacts:
    """``environment``: what the study recorded at its start (``versions``, ``driver``, ``cluster``)."""
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
        completed=int((status == TrialStatus.COMPLETED).sum()),
        stopped=int((status == TrialStatus.STOPPED).sum()),
        failed=int(status.isin(FAILED).sum()),
        running=int((status == TrialStatus.RUNNING).sum()),
        trial_epochs=epochs,
        wall_time_s=wall,
        trial_time_s=trial_time,
        reruns=len(reruns),
        rerun_epochs=rerun_epochs,
        final_runs=int((reruns[KIND_TAG] == FINAL_KIND).sum()) if KIND_TAG in reruns else 0,
        **_environment_facts(environment or {}),
    )


def _environment_facts(environment: dict[str, Any]) -> dict[str, Any]:
    if environment.get("versions") or environment.get("driver"):
        return {"versions": dict(environment.get("versions") or {}), "machine": dict(environment.get("driver") or {}),
                "cluster": dict(environment.get("cluster") or {}), "environment_of": STUDY}
    return {"versions": versions(), "machine": machine(), "environment_of": REPORT_WRITER}


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine() -> dict[str, str]:
    out = {"host": platform.node() or "unknown", "platform": platform.platform(), "cpu": cpu_model(),
           "cores": str(os.cpu_count() or "?")}
    gpus = _gpu_names()
    if gpus:
        out["gpu"] = gpus
    return out


def _gpu_names() -> str:
    """From nvidia-smi when there is one: a study's driver shares the GPUs with its trials, and asking torch
    would start CUDA in it. Else torch; empty without GPUs."""
    if shutil.which("nvidia-smi"):
        try:
            proc = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                  text=True, timeout=20)
            names = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
            if proc.returncode == 0 and names:
                return ", ".join(names)
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        import torch

        if torch.cuda.is_available():
            return ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except Exception:  # noqa: BLE001 - a broken CUDA setup must not stop the report
        pass
    return ""


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"

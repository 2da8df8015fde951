"""Light commands are light: ``status`` and ``status --json`` of a finished study, ``ui`` up to the point where it
starts MLflow's server, ``ui --help`` and ui's refusal import neither torch nor Ray, each checked in a fresh
interpreter (``benchmarks.harness.imported_by``). The modules checked are ``benchmarks.harness.TRAINING_STACK``:
torch, torchvision, timm, ray and the registries that import torch (``trainables.data``, ``trainables.models``,
``trainables.losses``); ``ui`` also imports no Optuna. ``list`` prints those registries, so it imports torch
(BENCHMARKS.md §17 has each command's wall time)."""

from __future__ import annotations

import json
import shutil

from benchmarks.harness import TRAINING_STACK, free_port, imported_by


def _copy(smoke_study, tmp_path):
    """The shared smoke study, copied: ``ui`` points a study's MLflow store at the folder it is given."""
    return shutil.copytree(smoke_study, tmp_path / "smoke")


def test_status_of_a_finished_study_imports_neither_torch_nor_ray(smoke_study, tmp_path):
    study = _copy(smoke_study, tmp_path)
    proc, code, modules = imported_by("status", study)
    assert code == "0", proc.stderr[-3000:]
    assert "trials asked for" in proc.stdout and "finished: every trial has ended" in proc.stdout
    assert "optuna sees: " in proc.stdout  # the Optuna storage is still read and shown
    assert not set(modules) & set(TRAINING_STACK), modules
    proc, code, modules = imported_by("status", study, "--json")
    assert code == "0", proc.stderr[-3000:]
    data = json.loads(proc.stdout[:proc.stdout.rindex("}") + 1])
    assert data["finished"] is True and data["resumable"] is False and data["optuna"]
    # the trials asked for (per_method: ce 1, ls 5) as study.json recorded them, which needs no loss registry
    assert data["trials_asked"] == json.loads((study / "study.json").read_text())["trials_asked"] == 6
    assert not set(modules) & set(TRAINING_STACK), modules


# Stands in for subprocess.Popen: ``ui`` stops where it would start MLflow's server (a BaseException, which the
# CLI's handlers let through); every other process (``platform`` asks ``uname``) starts as usual
STOP_AT_SERVER = """
import subprocess
class ServerWouldStart(BaseException):
    pass
_popen = subprocess.Popen
def _stop_at_server(cmd, *args, **kwargs):
    if list(map(str, cmd))[1:3] == ["-m", "mlflow"]:
        print("would start:", " ".join(map(str, cmd)))
        raise ServerWouldStart
    return _popen(cmd, *args, **kwargs)
subprocess.Popen = _stop_at_server
"""


def test_ui_imports_neither_torch_nor_ray_before_mlflow_starts(smoke_study, tmp_path):
    study = _copy(smoke_study, tmp_path)
    proc, code, modules = imported_by("ui", study, "--no-browser", "--port", str(free_port()), prelude=STOP_AT_SERVER)
    assert code == "raised" and "ServerWouldStart" in proc.stderr, proc.stderr[-3000:]
    assert "-m mlflow ui --backend-store-uri sqlite:///" in proc.stdout, proc.stdout
    assert not set(modules) & {*TRAINING_STACK, "optuna"}, modules
    for args, expected in ((("ui", "--help"), "0"), (("ui", tmp_path / "no_study"), "2")):
        proc, code, modules = imported_by(*args)
        assert code == expected, proc.stderr[-3000:]
        assert modules == [], (args, modules)  # nor pandas, pyarrow, scipy, Optuna or MLflow

"""`smoothstudy ui` lands on the study's runs table; the parent run carries each method's best result."""

from __future__ import annotations

import json
import shutil

import pytest
from mlflow import MlflowClient

from analysis.core.layout import StudyDir
from analysis.core.tables import METHOD
from analysis.leaderboard import best_trials
from analysis.results import read_trials
from study import ui
from study.report import run_map_of
from tests.conftest import refusal_here


def test_the_address_is_the_study_runs_table(smoke_study):
    study = StudyDir(smoke_study)
    experiment = MlflowClient(study.default_mlflow_uri).get_experiment_by_name(study.name)
    url = ui.open_ui(study, port=5123, open_browser=False, serve=False, echo=lambda line: None)
    assert url == f"http://127.0.0.1:5123/#/experiments/{experiment.experiment_id}/runs"


def test_a_tracking_server_is_printed_not_served(smoke_study, tmp_path, monkeypatch):
    copy = tmp_path / smoke_study.name
    shutil.copytree(smoke_study, copy, ignore=shutil.ignore_patterns("ray", "mlflow.db", "mlartifacts", "parquet"))
    meta = json.loads((copy / "study.json").read_text())
    (copy / "study.json").write_text(json.dumps({**meta, "mlflow_uri": "http://mlflow.example:5000/"}))
    monkeypatch.setattr(ui, "experiment_id_of", lambda uri, name: "7" if uri.startswith("http://mlflow.example") else None)
    monkeypatch.setattr(ui.subprocess, "Popen", lambda *a, **k: (_ for _ in ()).throw(AssertionError("served")))
    lines = []
    url = ui.open_ui(StudyDir(copy), open_browser=False, echo=lines.append)
    assert url == "http://mlflow.example:5000/#/experiments/7/runs" and url in lines[0]


def test_ui_refuses_a_folder_of_several_studies(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "study.yaml").write_text(f"name: {name}\n")
    proc = refusal_here("ui", tmp_path, "--no-browser")
    assert proc.returncode == 2 and "studies here: a, b" in proc.stderr


def test_the_parent_run_holds_the_best_result_of_each_method(smoke_study):
    study = StudyDir(smoke_study)
    parent = MlflowClient(study.default_mlflow_uri).get_run(run_map_of(study)["parent"])
    best = best_trials(read_trials(smoke_study), "val/acc", "max")
    assert len(best)
    for _, row in best.iterrows():
        method = row[METHOD]
        assert parent.data.metrics[f"best/{method}/val/acc"] == row["val/acc"]
        assert parent.data.metrics[f"best/{method}/test/acc"] == row["test/acc"]
        assert parent.data.tags[f"best/{method}/trial_id"] == row["trial_id"]


def _processes_naming(text: str) -> list[int]:
    from pathlib import Path

    found = []
    for pid_dir in Path("/proc").iterdir():
        if pid_dir.name.isdigit():
            try:
                if text in (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(pid_dir.name))
            except OSError:
                continue
    return found


@pytest.mark.slow  # 47 s of the default suite on a 2-core EPYC (MLflow's server starts)
def test_ui_stopped_by_sigterm_leaves_no_mlflow_process(tmp_path):
    """``smoothstudy ui`` prints its address at once and starts MLflow without its job runner; SIGTERM (as a process
    manager or ``kill`` sends it) stops it and the MLflow server it started, which would otherwise hold the port."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from tests.conftest import ROOT, free_port, processes_below, tiny_study

    study = tmp_path / "uistop"
    study.mkdir()
    (study / "study.yaml").write_text(open(tiny_study(tmp_path, "uistop")).read())
    from mlflow import MlflowClient

    MlflowClient(f"sqlite:///{study / 'mlflow.db'}").search_experiments()  # the study's store: ui makes none
    port = free_port()
    out = tmp_path / "ui.out"
    with open(out, "w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "study", "ui", str(study), "--no-browser", "--port", str(port)],
                                cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, out.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, out.read_text()
                time.sleep(1)
        assert _processes_naming(str(study)), "no MLflow server found for the study"
        below = processes_below(proc.pid)
        assert any("mlflow" in line for line in below), below
        assert not any("huey" in line for line in below), f"MLflow's job runner started: {below}"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:  # a failed assertion above: ui still stops its server on SIGTERM
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    text = out.read_text()
    assert f"http://127.0.0.1:{port}/#/experiments/" in text.splitlines()[0] or f"127.0.0.1:{port}" in text
    time.sleep(1)
    assert _processes_naming(str(study)) == [], "an MLflow process outlived ui"
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the port still answers"

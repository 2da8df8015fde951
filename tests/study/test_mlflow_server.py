"""`smoothstudy mlflow-server`: a real tracking server on 127.0.0.1 that a study logs to over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient

from analysis.core.errors import UsageError
from analysis.results import read_epochs, read_trials
from study.mlflow_server import JOBS_ENV, is_loopback, server_command, server_env, store_uris
from tests.conftest import ROOT, free_port, kill_processes_under, ray_env, run_cli, tiny_study


def machine_ip() -> str | None:
    """This machine's address on its network (not loopback), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent for UDP connect
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


class Server:
    """``smoothstudy mlflow-server`` in a subprocess; ``stop()`` ends its process group."""

    def __init__(self, store: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.store = store
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> Server:
        # The server's output goes to a file: an unread pipe fills up and then blocks the server mid-request.
        self.store.mkdir(parents=True, exist_ok=True)
        self.log = self.store / f"server-{self.port}.log"
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "study", "mlflow-server", "--port", str(self.port), "--store", str(self.store)],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as reply:
                    if reply.status == 200:
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"MLflow server did not come up:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def test_server_command_binds_loopback_by_default(tmp_path):
    from study.cli import _parser

    args = _parser().parse_args(["mlflow-server"])
    assert args.host == "127.0.0.1" and is_loopback(args.host)
    cmd = server_command(args.host, 5001, tmp_path / "store")
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    assert cmd[cmd.index("--artifacts-destination") + 1] == str(tmp_path / "store" / "artifacts")
    assert not is_loopback("0.0.0.0") and is_loopback("::1") and is_loopback("localhost")


def test_server_env_puts_the_interpreters_scripts_first_on_path(monkeypatch):
    scripts = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert server_env()["PATH"] == os.pathsep.join([scripts, "/usr/bin", "/bin"])
    monkeypatch.setenv("PATH", os.pathsep.join([scripts, "/usr/bin"]))
    assert server_env()["PATH"] == os.pathsep.join([scripts, "/usr/bin"])


def test_server_env_turns_the_job_runner_off_unless_the_user_set_it(monkeypatch):
    monkeypatch.delenv(JOBS_ENV, raising=False)
    assert JOBS_ENV == "MLFLOW_SERVER_ENABLE_JOB_EXECUTION" and server_env()[JOBS_ENV] == "false"
    monkeypatch.setenv(JOBS_ENV, "true")
    assert server_env()[JOBS_ENV] == "true"


def test_store_accepts_sqlalchemy_uris_and_refuses_others(tmp_path):
    backend, artifacts = store_uris("postgresql+psycopg2://u@db/mlflow", tmp_path / "a")
    assert backend == "postgresql+psycopg2://u@db/mlflow" and artifacts == str(tmp_path / "a")
    with pytest.raises(UsageError, match="store=s3://b"):
        store_uris("s3://b/x")
    with pytest.raises(UsageError, match="port=0"):
        server_command("127.0.0.1", 0, tmp_path)


def check_study_in_mlflow(client: MlflowClient, study_dir: Path, artifacts: bool = True) -> dict:
    """Parent run, one child per trial with its params, per-epoch metrics as in Parquet, and artifacts."""
    experiment = client.get_experiment_by_name(study_dir.name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("smoothstudy.kind") == "study"]
    children = [r for r in runs if r.data.tags.get("smoothstudy.kind") == "trial"]
    assert len(parents) == 1
    trials, epochs = read_trials(study_dir), read_epochs(study_dir)
    assert sorted(r.data.tags["smoothstudy.trial_id"] for r in children) == sorted(trials["trial_id"])
    for run in children:
        trial_id = run.data.tags["smoothstudy.trial_id"]
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        row = trials[trials["trial_id"] == trial_id].iloc[0]
        assert run.data.params["loss"] == row["config/loss"]
        assert run.data.tags["smoothstudy.status"] == row["status"]
        mine = epochs[epochs["trial_id"] == trial_id].sort_values("epoch")
        history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val/acc"))
        assert [s for s, _ in history] == list(mine["epoch"])
        assert [v for _, v in history] == pytest.approx(list(mine["val/acc"]))
        if artifacts and row["status"] == "completed":
            assert client.list_artifacts(run.info.run_id), f"no artifacts for completed trial {trial_id}"
    return {"parent": parents[0], "children": children}


# about 80 s on 2 idle cores, over the default suite's budget; the default suite logs to SQLite stores, and the slow
# outage test (test_faults.py) logs to a real server too
@pytest.mark.slow
def test_study_logs_to_a_real_server(tmp_path):
    server = Server(tmp_path / "mlflow").start()
    env = ray_env()
    try:
        ip = machine_ip()
        if ip is not None:  # bound to 127.0.0.1 only: not reachable on the machine's network address
            with pytest.raises(OSError):
                socket.create_connection((ip, server.port), timeout=2).close()
        study_file = tiny_study(tmp_path, "served", search={"num_samples": 4, "max_concurrent": 2,
                                                            "n_startup_trials": 2})
        run_cli("run", study_file, "--storage", str(tmp_path / "runs"), "--mlflow-uri", server.uri, env=env)
        found = check_study_in_mlflow(MlflowClient(server.uri), tmp_path / "runs" / "served")
        assert found["parent"].info.status == "FINISHED"
        assert any(p.is_file() for p in (tmp_path / "mlflow" / "artifacts").rglob("*"))  # served artifact root
        assert not (tmp_path / "runs" / "served" / "mlflow.db").exists()  # nothing went to the local store
    finally:
        server.stop()
        kill_processes_under(env["RAY_TMPDIR"])
    assert server.proc.poll() is not None

"""A real two-node Ray cluster on this machine (two `ray start`, 1 CPU each, token auth on): a study joins it
with --address and its trials run on both nodes, as the node ids recorded in Parquet show."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from analysis.results import read_epochs, read_trials
from study.callback import NODE_ID, NODE_IP
from study.cluster import enable_token_auth, reachable, token_available
from tests.conftest import free_port, kill_processes_under, run_cli, tiny_study

RAY = str(Path(sys.executable).with_name("ray"))
WORKER_IP = "127.0.0.2"  # a second loopback address: the worker node gets an IP of its own


def node_ports() -> list[str]:
    """Ports of our own for the Ray agents that default to fixed ports, so clusters of other people on this machine never clash."""
    return ["--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
            "--runtime-env-agent-port", str(free_port()), "--metrics-export-port", str(free_port())]


class TwoNodeCluster:
    def __init__(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="rc", dir="/tmp")
        self.token = Path(self.tmp) / "token"
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        from ray._private.authentication.authentication_token_generator import (
            generate_new_authentication_token,
        )

        self.token.write_text(generate_new_authentication_token())
        # Every process of the cluster and every driver reads the token from this file (RAY_AUTH_TOKEN_PATH);
        # `ray start --address` joins with it only when told RAY_AUTH_MODE=token.
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.token),
                    "RAY_TMPDIR": self.tmp}
        self.start_s = 0.0

    def start(self) -> TwoNodeCluster:
        start = time.perf_counter()
        common = ["--num-cpus=1", "--disable-usage-stats", *node_ports()]
        self._ray("start", "--head", f"--port={self.port}", f"--temp-dir={self.tmp}", "--include-dashboard=false",
                  f"--dashboard-port={free_port()}", *common)
        self._ray("start", f"--address={self.address}", f"--node-ip-address={WORKER_IP}", *common)
        self.start_s = time.perf_counter() - start
        return self

    def _ray(self, *args: str) -> None:
        proc = subprocess.run([RAY, *args], env=self.env, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            self.stop()
            raise AssertionError(f"ray {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")

    def stop(self) -> None:
        kill_processes_under(self.tmp)


@pytest.fixture
def cluster():
    c = TwoNodeCluster().start()
    yield c
    c.stop()


def test_token_auth_is_sent_when_joining_by_address(monkeypatch, tmp_path):
    token = tmp_path / "token"
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    assert not token_available()
    enable_token_auth("10.0.0.1:6379")
    assert "RAY_AUTH_MODE" not in os.environ  # no token: nothing to send
    token.write_text("abc")
    enable_token_auth("10.0.0.1:6379")
    assert os.environ["RAY_AUTH_MODE"] == "token"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    enable_token_auth("10.0.0.1:6379")
    assert os.environ["RAY_AUTH_MODE"] == "disabled"  # the user's choice stands


def test_reachable_probes_the_head_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert reachable(f"127.0.0.1:{port}") and reachable(f"ray://127.0.0.1:{port}")
    assert not reachable(f"127.0.0.1:{port}", timeout_s=1.0)  # closed now: nobody answers
    assert reachable("auto")  # no port to probe: ray.init finds out (quickly)


@pytest.mark.slow  # about 1.5 min: a cluster start and a study
def test_study_runs_on_both_nodes(tmp_path, cluster):
    print(f"two-node cluster started in {cluster.start_s:.1f} s")
    study_file = tiny_study(tmp_path, "spread", asha={"enabled": False},
                            training={"optimizer": "sgd", "lr": 0.05, "epochs": 2, "batch_size": 64, "device": "cpu"},
                            search={"num_samples": 4, "max_concurrent": 2, "n_startup_trials": 2})
    env = {k: v for k, v in cluster.env.items() if k != "RAY_AUTH_MODE"}  # the CLI turns token mode on itself
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, "-m", "study", "run", study_file, "--storage",
                           str(tmp_path / "runs"), "--address", cluster.address,
                           "--ray-storage", str(tmp_path / "shared")],
                          cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    study_dir = tmp_path / "runs" / "spread"
    trials, epochs = read_trials(study_dir), read_epochs(study_dir)
    assert len(trials) == 4 and set(trials["status"]) == {"completed"}
    node_ids = set(trials[NODE_ID])
    assert len(node_ids) == 2 and all(len(n) == 56 for n in node_ids), node_ids  # hex ids of two nodes
    assert WORKER_IP in set(trials[NODE_IP])
    assert set(epochs[NODE_ID]) == node_ids  # each epoch row says where it ran too
    checkpoints = list((tmp_path / "shared" / "spread" / "ray").glob("*/checkpoint_*"))
    assert len({c.parent for c in checkpoints}) == 4  # every trial's checkpoints on the storage all nodes see
    assert not (study_dir / "ray").exists()
    status = run_cli("status", str(study_dir)).stdout
    assert "finished" in status
    meta = json.loads((study_dir / "study.json").read_text())
    assert meta["address"] == cluster.address  # `rerun --parallel` and `resume` go back to it
    assert meta["environment"]["cluster"] == {"nodes": 2, "cpus": 2.0, "gpus": 0.0}

"""A real two-node Ray cluster on this machine (two `ray start`, 1 CPU each, token auth on): a study joins it
with --address and its trials run on both nodes, as the node ids recorded in Parquet show."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.results import read_epochs, read_trials
from benchmarks.harness import WORKER_IP, TwoNodeCluster
from study.callback import NODE_ID, NODE_IP
from study.cluster import enable_token_auth, reachable, token_available
from tests.conftest import run_cli, tiny_study


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

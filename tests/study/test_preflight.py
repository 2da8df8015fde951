"""Checks before Ray starts: the MLflow URI (scheme, a server that answers) and writable destinations."""

from __future__ import annotations

import importlib.util
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from analysis.core.errors import UsageError
from study.preflight import check_mlflow_uri, check_optuna_storage, check_port, check_writable_dir


def serve(status: int):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(status if self.path == "/health" else 404)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize(("status", "accepted"), [(200, True), (401, True), (404, False), (500, False)])
def test_a_tracking_server_must_answer_its_health_check(status, accepted):
    server = serve(status)
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        if accepted:
            check_mlflow_uri(uri)
        else:
            with pytest.raises(UsageError, match=f"not an MLflow tracking server .GET /health: HTTP {status}"):
                check_mlflow_uri(uri)
    finally:
        server.shutdown()


def test_a_silent_server_is_refused_within_the_timeout():
    import socket
    import time

    with socket.socket() as sock:  # listens but never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        start = time.monotonic()
        with pytest.raises(UsageError, match="no MLflow server answers there"):
            check_mlflow_uri(f"http://127.0.0.1:{sock.getsockname()[1]}", timeout_s=1)
        assert time.monotonic() - start < 5


@pytest.mark.parametrize("uri", ["sqlite:///runs/mlflow.db", "databricks"])
def test_local_uris_need_no_server(tmp_path, monkeypatch, uri):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    check_mlflow_uri(uri)


@pytest.mark.parametrize("folder", ["missing", "f"])
def test_sqlite_in_a_folder_that_is_not_there_is_refused(tmp_path, folder):
    (tmp_path / "f").write_text("x")
    for check, setting in ((check_mlflow_uri, "mlflow-uri"), (check_optuna_storage, "optuna-storage")):
        with pytest.raises(UsageError, match=f"{setting}=.*: the folder .*{folder} does not exist"):
            check(f"sqlite:///{tmp_path}/{folder}/x.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_a_database_server_must_answer(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())  # as if its driver were installed
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: closed
        for check, setting in ((check_mlflow_uri, "mlflow-uri"), (check_optuna_storage, "optuna-storage")):
            with pytest.raises(UsageError, match=f"{setting}=.*: no database server answers at 127.0.0.1:{port}"):
                check(f"postgresql://u@127.0.0.1:{port}/db", timeout_s=1)


def test_writable_dir_and_ports(tmp_path):
    check_writable_dir(tmp_path / "new" / "deeper", "storage")  # may be created
    with pytest.raises(UsageError, match="port=0: allowed: 1 to 65535"):
        check_port("127.0.0.1", 0)

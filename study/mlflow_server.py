"""`smoothstudy mlflow-server`: a real MLflow tracking server for studies on a cluster.

Runs ``mlflow server`` with a SQL backend (a SQLite file under ``--store`` or any SQLAlchemy URI such as
``postgresql://user@db/mlflow``) and a local artifact root that the server serves to its clients, so
workers and drivers on other machines need only ``--mlflow-uri http://HOST:PORT``. It binds 127.0.0.1
unless asked otherwise: the server has no authentication.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

from analysis.core.errors import UsageError

DEFAULT_WORKERS = 2  # MLflow's default of 4 request workers is a lot on a small head node
SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def store_uris(store: str | Path, artifacts: str | Path | None = None) -> tuple[str, str]:
    """(backend store URI, artifacts destination) for ``store``: a directory (SQLite ``mlflow.db`` and
    ``artifacts/`` inside it) or a SQLAlchemy URI (artifacts then default to ``./mlflow-artifacts``)."""
    text = str(store)
    if "://" in text:
        scheme = text.split("://", 1)[0].split("+", 1)[0]
        if scheme not in SQL_SCHEMES:
            raise UsageError(f"store={text}: allowed: a directory or a SQLAlchemy URI "
                             f"({', '.join(s + '://…' for s in SQL_SCHEMES)})")
        return text, str(Path(artifacts or "mlflow-artifacts").expanduser().absolute())
    root = Path(text).expanduser().absolute()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}", str(Path(artifacts or root / "artifacts").expanduser().absolute())


def server_command(host: str, port: int, store: str | Path, artifacts: str | Path | None = None,
                   workers: int = DEFAULT_WORKERS) -> list[str]:
    if not 0 < port < 65536:
        raise UsageError(f"port={port}: allowed: 1 to 65535")
    if workers < 1:
        raise UsageError(f"workers={workers}: allowed: at least 1")
    backend, destination = store_uris(store, artifacts)
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
            "--serve-artifacts", "--artifacts-destination", destination,
            "--host", host, "--port", str(port), "--workers", str(workers)]


JOBS_ENV = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"


def server_env() -> dict[str, str]:
    """The environment every MLflow server this tool starts runs in (``mlflow-server`` and ``ui``).

    MLflow's job runner (7 huey consumer processes in MLflow 3.17: GenAI scorers, prompt optimisation, evaluation)
    serves features studies never use and slows start-up on a small machine (BENCHMARKS.md §18), so it is off unless
    the user's own environment sets ``JOBS_ENV``. The interpreter's scripts folder goes first on PATH: where the
    runner does start, MLflow < 3.11 finds it (``huey_consumer.py``) on PATH and, in a venv that is not activated,
    restarts a failing one in a loop."""
    scripts = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    return {JOBS_ENV: "false", **os.environ,
            "PATH": path if path.split(os.pathsep)[0] == scripts else os.pathsep.join([scripts, path])}


def serve(host: str = "127.0.0.1", port: int = 5000, store: str | Path = "runs/mlflow-server",
          artifacts: str | Path | None = None, echo=print) -> int:
    """Runs the server in the foreground until it exits or Ctrl-C; returns its exit code."""
    from study.preflight import check_port

    command = server_command(host, port, store, artifacts)
    check_port(host, port)
    backend = command[command.index("--backend-store-uri") + 1]
    if not is_loopback(host):
        echo(f"warning: the MLflow server listens on {host}: anyone who can reach port {port} can read and "
             "write every run (MLflow has no authentication here); bind 127.0.0.1 and use an SSH tunnel instead")
    echo(f"MLflow tracking server at http://{host}:{port}  (store: {backend}); studies log to it with "
         f"--mlflow-uri http://{host}:{port}; Ctrl-C stops it", flush=True)
    process = subprocess.Popen(command, env=server_env())
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        return 0

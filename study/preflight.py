"""Checks of a command's settings that need no Ray and leave nothing behind (a folder's writability is probed
with an empty folder, removed at once): where files go, the MLflow tracking URI, the Optuna storage, Ray's
storage and saved state, GPUs and resources on a local Ray, ports. Each refusal is a ``UsageError`` of one line
naming the setting; network checks give up after a few seconds. Nothing here imports torch or Ray (torch only
to count GPUs where a GPU device exists)."""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import pickletools
import socket
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from analysis.core.errors import UsageError
from analysis.core.layout import RAY_DIR, SCRATCH_PREFIX, StudyDir
from study.ray_storage import check_ray_storage

if TYPE_CHECKING:  # the schema imports torch: the port and URI checks need none of it
    from search_spaces.study_file import Resources, StudySpec

NETWORK_TIMEOUT_S = 5.0
STORAGE_TIMEOUT_S = 15.0  # an object store's first answer (region lookup, credentials) can take seconds
MLFLOW_SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
MLFLOW_SCHEMES = (*MLFLOW_SQL_SCHEMES, "file", "http", "https", "databricks")
# SQLAlchemy's database servers: the default port, and the Python driver each needs (``scheme+driver`` names one)
SQL_SERVERS = {"postgresql": (5432, "psycopg2"), "mysql": (3306, "MySQLdb"), "mssql": (1433, "pyodbc"),
               "oracle": (1521, "cx_oracle")}
SQL_DRIVERS = {"psycopg": "psycopg", "psycopg2": "psycopg2", "pg8000": "pg8000", "asyncpg": "asyncpg",
               "pymysql": "pymysql", "mysqldb": "MySQLdb", "mysqlconnector": "mysql.connector",
               "pyodbc": "pyodbc", "pymssql": "pymssql", "cx_oracle": "cx_Oracle", "oracledb": "oracledb"}


def check_run(spec: StudySpec, study: StudyDir, address: str | None, mlflow_uri: str | None,
              ray_storage: str | None) -> None:
    """Everything ``run`` can check before Ray starts and before it writes anything."""
    check_writable_dir(study.root.parent, "storage")
    check_mlflow_uri(mlflow_uri)
    check_ray_storage_reachable(ray_storage)
    check_local_resources(spec.resources, address)


def check_writable_dir(path: Path, setting: str) -> None:
    """``path`` is a directory this process may write, or one it may create."""
    path = path.expanduser().absolute()
    existing = next(p for p in (path, *path.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise UsageError(f"{setting}={path}: {existing} is a file, not a directory")
    try:  # os.access says yes to root everywhere, also where nothing can be made (/proc, a read-only mount)
        if not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError
        os.rmdir(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=existing))
    except OSError:
        raise UsageError(f"{setting}={path}: {existing} is not writable by this user") from None


def check_run_flags(spec: dict[str, Any], smoke_test: bool, storage: Path, address: str | None,
                    mlflow_uri: str | None, ray_storage: str | None, optuna_storage: str | None) -> None:
    """What ``run`` can check of its flags, and of the study file against this machine, before anything heavy
    is imported: ``spec`` is the study file's settings as read (``search_spaces.study_file.read_study_file``)."""
    check_writable_dir(storage, "storage")
    check_mlflow_uri(mlflow_uri)
    check_optuna_storage(optuna_storage)
    check_ray_storage_reachable(check_ray_storage(ray_storage))
    training, resources = spec.get("training") or {}, spec.get("resources") or {}
    if not (address or os.environ.get("RAY_ADDRESS")):
        gpus = local_gpu_count() if training.get("device") == "cuda" or resources.get("gpu") else None
        if training.get("device") == "cuda" and not smoke_test and not gpus:  # a smoke test trains on the CPU
            raise UsageError("training.device=cuda: this machine has no GPU (a local Ray); allowed: cpu or auto, "
                             "or --address a cluster with GPUs")
        if gpus is not None and (resources.get("gpu") or 0) > gpus and not smoke_test:
            raise UsageError(f"resources.gpu={resources['gpu']:g} is more than this machine's {gpus} GPUs (a local "
                             f"Ray); allowed: at most {gpus}, or --address a cluster with GPUs")


def local_gpu_count() -> int:
    """The GPUs torch sees here; without a GPU device node (NVIDIA's or ROCm's) none, without importing torch."""
    if not (glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/kfd")):
        return 0
    import torch

    return torch.cuda.device_count()


def check_optuna_storage(url: str | None, timeout_s: float = NETWORK_TIMEOUT_S) -> None:
    """``--optuna-storage``: an SQLAlchemy URL of a database there is (a SQLite file in a folder that exists, or
    a server that accepts connections) with its Python driver installed."""
    if url:
        check_sql_url(url, "optuna-storage", timeout_s)


def check_sql_url(url: str, setting: str, timeout_s: float = NETWORK_TIMEOUT_S) -> None:
    parts = urlsplit(url)
    scheme, _, driver = parts.scheme.partition("+")
    if "://" not in url or scheme not in ("sqlite", *SQL_SERVERS):
        raise UsageError(f"{setting}={url}: not a database URL; allowed: sqlite:///path/to/file.db or "
                         f"{', '.join(s + '://user@host/db' for s in SQL_SERVERS)}")
    if scheme == "sqlite":
        if parts.netloc or parts.path in ("", "/", "/:memory:"):
            raise UsageError(f"{setting}={url}: not a SQLite file; allowed: sqlite:///relative.db or "
                             "sqlite:////absolute/path.db")
        folder = Path(parts.path[1:]).expanduser().absolute().parent
        if not folder.is_dir():
            raise UsageError(f"{setting}={url}: the folder {folder} does not exist; allowed: a file in a folder "
                             "that does (it is not made)")
        check_writable_dir(folder, setting)
        return
    port, default_driver = SQL_SERVERS[scheme]
    module = SQL_DRIVERS.get(driver.lower(), driver) if driver else default_driver
    if importlib.util.find_spec(module.split(".")[0]) is None:
        raise UsageError(f"{setting}={url}: {scheme} needs the Python driver {module!r}, which is not installed "
                         "here; allowed: a driver that is (scheme+driver://…)")
    try:
        host, port = parts.hostname or "localhost", parts.port or port
    except ValueError as err:
        raise UsageError(f"{setting}={url}: {err}") from None
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as err:
        raise UsageError(f"{setting}={url}: no database server answers at {host}:{port} "
                         f"({err.strerror or err})") from None


def _within(seconds: float, what: Callable[[], Any]) -> tuple[bool, Any]:
    """``(finished, result or the exception raised)`` of ``what()`` run in a daemon thread for ``seconds``."""
    box: list[Any] = []

    def target() -> None:
        try:
            box.append(what())
        except Exception as err:  # noqa: BLE001 - handed to the caller
            box.append(err)

    thread = threading.Thread(target=target, name="smoothstudy-preflight", daemon=True)
    thread.start()
    thread.join(seconds)
    return (bool(box), box[0] if box else None)


def check_ray_storage_reachable(ray_storage: str | None, timeout_s: float = STORAGE_TIMEOUT_S) -> None:
    """A ``--ray-storage`` URI must open (pyarrow, as Ray does) and a directory must be writable."""
    if not ray_storage:
        return
    if "://" not in ray_storage or ray_storage.startswith("file://"):
        check_writable_dir(Path(ray_storage.removeprefix("file://")), "ray-storage")
        return
    from pyarrow import fs

    finished, result = _within(timeout_s, lambda: fs.FileSystem.from_uri(ray_storage))
    if not finished:
        raise UsageError(f"ray-storage={ray_storage}: no answer within {timeout_s:g} s")
    if isinstance(result, Exception):
        raise UsageError(f"ray-storage={ray_storage}: cannot open it ({_first_line(result)})")


def check_mlflow_uri(uri: str | None, timeout_s: float = NETWORK_TIMEOUT_S) -> None:
    """A tracking URI MLflow knows, and for a server one that answers (else MLflow would warn and the study
    would run without its store)."""
    if not uri:
        return
    if "://" not in uri:  # a local directory: MLflow's file store
        check_writable_dir(Path(uri), "mlflow-uri")
        return
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in MLFLOW_SCHEMES:
        raise UsageError(f"mlflow-uri={uri}: unknown scheme {scheme!r}; allowed: "
                         f"{', '.join(s + '://…' for s in MLFLOW_SCHEMES)} or a directory")
    if scheme in ("sqlite", *SQL_SERVERS):
        check_sql_url(uri, "mlflow-uri", timeout_s)
    elif scheme == "file":
        check_writable_dir(Path(parts.path), "mlflow-uri")
    elif scheme in ("http", "https"):
        health = uri.rstrip("/") + "/health"

        def ask() -> int:
            try:
                with urllib.request.urlopen(health, timeout=timeout_s) as response:  # noqa: S310 - http(s) only
                    return response.status
            except urllib.error.HTTPError as err:
                return err.code

        finished, result = _within(timeout_s + 1, ask)
        if not finished or isinstance(result, Exception):
            why = f"no answer within {timeout_s:g} s" if not finished else _first_line(result)
            raise UsageError(f"mlflow-uri={uri}: no MLflow server answers there ({why}); start one with "
                             "'smoothstudy mlflow-server' or leave --mlflow-uri out")
        if result not in (200, 401, 403):  # a server behind authentication answers 401/403
            raise UsageError(f"mlflow-uri={uri}: the server there is not an MLflow tracking server "
                             f"(GET /health: HTTP {result})")


def check_local_resources(resources: Resources, address: str | None) -> None:
    """On a local Ray (no address to join) the cluster is this machine: refuse trial resources it lacks
    before Ray starts. A cluster to join is checked once joined (``cluster.check_trial_resources``)."""
    if address or os.environ.get("RAY_ADDRESS"):
        return
    cpus = os.cpu_count() or 1  # at least what Ray counts (it may count fewer under a cgroup quota)
    if resources.cpu > cpus:
        raise UsageError(f"resources.cpu={resources.cpu:g} is more than this machine's {cpus} CPUs (a local Ray); "
                         f"allowed: at most {cpus}, or --address a larger cluster")
    if resources.gpu > 0:
        gpus = local_gpu_count()
        if resources.gpu > gpus:
            raise UsageError(f"resources.gpu={resources.gpu:g} is more than this machine's {gpus} GPUs (a local "
                             f"Ray); allowed: at most {gpus}, or --address a cluster with GPUs")


def check_port(host: str, port: int, setting: str = "port") -> None:
    """``port`` is a TCP port number that ``host`` can listen on now."""
    if not 0 < port < 65536:
        raise UsageError(f"{setting}={port}: allowed: 1 to 65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as err:
        raise UsageError(f"host={host}: cannot resolve it ({err.strerror or err})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as err:
            raise UsageError(f"{setting}={port}: cannot listen on {host}:{port} ({err.strerror or err}); "
                             "pick another --port") from None


def check_ray_state(study: StudyDir) -> None:
    """The Ray experiment state ``resume`` restores (under the study folder) parses: its JSON, and its pickles
    read as pickles (``pickletools`` walks their opcodes without running them)."""
    ray_storage = study.meta().get("ray_storage")
    if ray_storage and "://" in ray_storage and not ray_storage.startswith("file://"):
        return  # an object store: Ray reads it
    folder = Path(ray_storage.removeprefix("file://")) / study.name / RAY_DIR if ray_storage else study.ray
    for path in sorted(folder.glob("*.json")) + sorted(folder.glob("*.pkl")):
        try:
            data = path.read_bytes()
            if path.suffix == ".json" and not data.startswith(b"\x80"):  # Tune's search_gen_state-*.json is a pickle
                json.loads(data)
            else:
                for _ in pickletools.genops(data):
                    pass
        except (OSError, ValueError, EOFError) as err:
            raise UsageError(f"{path}: not Ray's experiment state ({_first_line(err)}); the study cannot be "
                             "resumed from it") from None


def _first_line(err: BaseException) -> str:
    text = (str(err).splitlines() or [type(err).__name__])[0]
    return text if len(text) <= 200 else text[:199] + "…"

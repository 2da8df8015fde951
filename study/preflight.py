"""Checks of a command's settings that need no Ray and write nothing: where files go, the MLflow tracking URI,
Ray's storage, resources on a local Ray, ports. Each refusal is a ``UsageError`` of one line naming the
setting; network checks give up after a few seconds."""

from __future__ import annotations

import os
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from analysis.core.errors import UsageError
from analysis.core.layout import StudyDir

if TYPE_CHECKING:  # the schema imports torch: the port and URI checks need none of it
    from search_spaces.study_file import Resources, StudySpec

NETWORK_TIMEOUT_S = 5.0
STORAGE_TIMEOUT_S = 15.0  # an object store's first answer (region lookup, credentials) can take seconds
MLFLOW_SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
MLFLOW_SCHEMES = (*MLFLOW_SQL_SCHEMES, "file", "http", "https", "databricks")


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
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{setting}={path}: {existing} is not writable by this user")


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
    if scheme == "sqlite" and parts.path not in ("", "/", "/:memory:"):
        check_writable_dir(Path(parts.path[1:]).parent, "mlflow-uri")  # sqlite:///rel.db, sqlite:////abs.db
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
        import torch

        gpus = torch.cuda.device_count()
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


def _first_line(err: BaseException) -> str:
    text = (str(err).splitlines() or [type(err).__name__])[0]
    return text if len(text) <= 200 else text[:199] + "…"

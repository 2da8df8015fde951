"""`smoothstudy ui`: the study's runs table in the MLflow UI.

MLflow 3 opens the root page (and an experiment's page) on its GenAI overview; the runs table is at
``#/experiments/<id>/runs``, so that is the address printed and opened. A study logged to a tracking server
(``--mlflow-uri http://…``, recorded in study.json) is already served: its address is printed, no local server
is started. A study with a local store gets ``mlflow ui`` on it, in a process group of its own whose output goes
to a log file (its access log and warnings are not the study's); the address is printed at once, and again when
it answers. Ctrl-C or SIGTERM stops the server with ``ui``: a server left behind would hold the port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import webbrowser
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from analysis.core.layout import StudyDir
from search_spaces.study_file import read_study_file
from study.mlflow_server import server_env
from study.sqlite_cache import study_tracking_uri

REMOTE_SCHEMES = ("http://", "https://")


def runs_table_url(base: str, experiment_id: str | None) -> str:
    base = base.rstrip("/")
    return f"{base}/#/experiments/{experiment_id}/runs" if experiment_id is not None else f"{base}/"


def experiment_id_of(tracking_uri: str, name: str) -> str | None:
    from mlflow import MlflowClient

    found = MlflowClient(tracking_uri).get_experiment_by_name(name)
    return None if found is None else found.experiment_id


START_WAIT_S = 60.0  # after this, ui says the server is still starting and keeps waiting
STOP_WAIT_S = 10.0  # a server that has not stopped by then after SIGTERM is killed


def wait_until_up(url: str, proc: subprocess.Popen, timeout_s: float) -> bool:
    """Whether ``url`` answers within ``timeout_s`` while ``proc`` runs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            time.sleep(0.5)
    return False


def open_ui(study: StudyDir, host: str = "127.0.0.1", port: int = 5000, open_browser: bool = True,
            echo: Callable[[str], None] = print, serve: bool = True) -> str:
    """Prints (and opens in a browser) the study's runs table; for a local store, serves it with ``mlflow ui``
    until Ctrl-C. Returns the address."""
    uri = study_tracking_uri(study)
    name = read_study_file(study.study_file)["name"]  # no registries: the UI imports neither torch nor Ray
    if uri.startswith(REMOTE_SCHEMES):
        url = runs_table_url(uri, experiment_id_of(uri, name))
        echo(f"study {name} is on the MLflow server {uri}: {url}")
        if open_browser:
            webbrowser.open(url)
        return url
    url = runs_table_url(f"http://{host}:{port}", experiment_id_of(uri, name))
    if not serve:
        return url
    log = Path(tempfile.gettempdir()) / f"smoothstudy-mlflow-ui-{port}.log"
    with open(log, "wb") as out, _sigterm_interrupts():
        proc = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                                 "--host", host, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                env=server_env(), start_new_session=True)
        try:
            echo(f"MLflow UI of study {name}: {url}  (store: {uri}; starting, its log: {log}); Ctrl-C stops it")
            up = wait_until_up(f"http://{host}:{port}/health", proc, START_WAIT_S)
            if up:
                echo(f"MLflow UI is up: {url}")
                if open_browser:
                    webbrowser.open(url)
            elif proc.poll() is None:
                echo(f"MLflow UI is still starting after {START_WAIT_S:.0f} s (a busy machine); it will answer at {url}")
            return_code = proc.wait()
            if return_code:
                echo(f"mlflow ui exited with {return_code}; its log: {log}")
        except KeyboardInterrupt:
            pass
        finally:
            stop_server(proc)
    return url


@contextmanager
def _sigterm_interrupts():
    """SIGTERM raises KeyboardInterrupt meanwhile (in the main thread), so ``ui`` stops its server on either."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop_server(proc: subprocess.Popen) -> None:
    """Stops ``proc`` and every process of its group (MLflow's server runs its workers as children)."""
    if proc.poll() is None or _group_alive(proc.pid):
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline and (proc.poll() is None or _group_alive(proc.pid)):
            time.sleep(0.1)
        if proc.poll() is None or _group_alive(proc.pid):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    proc.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True

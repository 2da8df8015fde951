"""`smoothstudy ui`: the study's runs table in the MLflow UI.

MLflow 3 opens the root page (and an experiment's page) on its GenAI overview; the runs table is at
``#/experiments/<id>/runs``, so that is the address printed and opened. A study logged to a tracking server
(``--mlflow-uri http://…``, recorded in study.json) is already served: its address is printed, no local server
is started. A study with a local store gets ``mlflow ui`` on it.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
import webbrowser
from collections.abc import Callable

from analysis.core.layout import StudyDir
from search_spaces.study_file import read_study_file
from study.sqlite_cache import study_tracking_uri

REMOTE_SCHEMES = ("http://", "https://")


def runs_table_url(base: str, experiment_id: str | None) -> str:
    base = base.rstrip("/")
    return f"{base}/#/experiments/{experiment_id}/runs" if experiment_id is not None else f"{base}/"


def experiment_id_of(tracking_uri: str, name: str) -> str | None:
    from mlflow import MlflowClient

    found = MlflowClient(tracking_uri).get_experiment_by_name(name)
    return None if found is None else found.experiment_id


def _wait_until_up(url: str, proc: subprocess.Popen, timeout_s: float) -> bool:
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
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                             "--host", host, "--port", str(port)])
    try:
        if _wait_until_up(f"http://{host}:{port}/health", proc, 60):
            echo(f"MLflow UI of study {name}: {url}  (store: {uri}); Ctrl-C stops it")
            if open_browser:
                webbrowser.open(url)
        return_code = proc.wait()
        if return_code:
            echo(f"mlflow ui exited with {return_code}")
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
    return url

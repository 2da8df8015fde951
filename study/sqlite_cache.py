"""New MLflow SQLite stores copied from a cached empty one.

Creating MLflow's schema runs its Alembic migrations: ~0.8 s more driver CPU at every study start than the
copy (BENCHMARKS.md), spent while the first trials' workers import torch on the same cores. An empty schema
depends only on the package versions, so it is made once per version in the cache directory and each
new study copies it. ``SMOOTHSTUDY_CACHE_DIR`` moves the cache; set to an empty string, it turns it off.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from analysis.core.errors import UsageError
from analysis.core.layout import MLFLOW_ARTIFACT_DIR as ARTIFACT_DIR
from analysis.core.layout import StudyDir

CACHE_ENV = "SMOOTHSTUDY_CACHE_DIR"
SQLITE_PREFIX = "sqlite:///"


def cache_dir() -> Path | None:
    if CACHE_ENV in os.environ:
        return Path(os.environ[CACHE_ENV]).expanduser() if os.environ[CACHE_ENV] else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "smoothstudy"


def sqlite_file(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` URI (``sqlite:////abs/path`` or ``sqlite:///rel/path``), else None."""
    if not uri.startswith(SQLITE_PREFIX) or uri == SQLITE_PREFIX + ":memory:":
        return None
    return Path(uri.removeprefix(SQLITE_PREFIX))


def make_parent_folder(uri: str) -> None:
    """The folder of a ``sqlite:///`` URI's file, which SQLite does not create (other URIs: nothing)."""
    path = sqlite_file(uri)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def copy_empty_database(uri: str, key: str, create: Callable[[str], None]) -> bool:
    """Make the absent SQLite file of ``uri`` as a copy of the cached empty database ``key`` (made first,
    by ``create(template_uri)``, if the cache has none). False when nothing was copied (not a new SQLite
    file, no usable cache): the caller's client then creates the database itself, as without a cache."""
    path, folder = sqlite_file(uri), cache_dir()
    if path is None or path.exists() or folder is None:
        return False
    template = folder / f"{key}.db"
    try:
        if not template.exists():
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / f"{key}.{os.getpid()}.partial.db"
            partial.unlink(missing_ok=True)
            create(SQLITE_PREFIX + str(partial.absolute()))
            os.replace(partial, template)  # atomic: a concurrent study sees no template or a whole one
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, path)
    except (OSError, sqlite3.Error):
        return False
    return True


def mlflow_key() -> str:
    import mlflow
    import sqlalchemy

    return f"mlflow-{mlflow.__version__}-sqlalchemy-{sqlalchemy.__version__}"


def _create_mlflow(uri: str) -> None:
    from mlflow import MlflowClient

    MlflowClient(uri).search_experiments(max_results=1)  # the store runs MLflow's migrations on first use


def new_mlflow_database(uri: str, artifact_root: str | None) -> None:
    """A new MLflow SQLite store for ``uri``. MLflow's own ``Default`` experiment gets ``artifact_root``/0 as
    its artifact location (made, it would be ``./mlruns/0`` of whichever directory made the template) and
    now as its creation time."""
    if not copy_empty_database(uri, mlflow_key(), _create_mlflow) or artifact_root is None:
        return
    now = int(time.time() * 1000)
    db = sqlite3.connect(sqlite_file(uri))
    try:
        with db:
            db.execute("UPDATE experiments SET artifact_location = ?, creation_time = ?, last_update_time = ? "
                       "WHERE experiment_id = 0", (f"{artifact_root.rstrip('/')}/0", now, now))
    except sqlite3.Error:
        pass  # another MLflow schema: Default keeps the template's location; the study's experiment is unaffected
    finally:
        db.close()


def move_artifact_root(uri: str, artifact_root: str) -> int:
    """After a study folder moved, its SQLite store still names the old ``…/mlartifacts`` folder in each
    experiment's artifact location and each run's artifact URI: they are pointed at ``artifact_root`` (the
    folder next to the database now). Returns how many rows changed; a store in another schema is left as is."""
    path = sqlite_file(uri)
    if path is None or not path.exists():
        return 0
    new = artifact_root.rstrip("/")
    db = sqlite3.connect(path)
    try:
        with db:
            rows = db.execute("SELECT artifact_location FROM experiments").fetchall()
            old = {loc[: loc.index(f"/{ARTIFACT_DIR}") + len(ARTIFACT_DIR) + 1]
                   for (loc,) in rows if loc and loc.startswith("file:") and f"/{ARTIFACT_DIR}" in loc}
            changed = 0
            for root in old - {new}:
                changed += db.execute("UPDATE experiments SET artifact_location = ? || substr(artifact_location, ?) "
                                      "WHERE substr(artifact_location, 1, ?) = ?",
                                      (new, len(root) + 1, len(root), root)).rowcount
                changed += db.execute("UPDATE runs SET artifact_uri = ? || substr(artifact_uri, ?) "
                                      "WHERE substr(artifact_uri, 1, ?) = ?",
                                      (new, len(root) + 1, len(root), root)).rowcount
            return changed
    except sqlite3.Error:
        return 0
    finally:
        db.close()


def study_tracking_uri(study: StudyDir) -> str:
    """The study's tracking URI for a command on its folder. Its own SQLite store must be there (a read command
    never makes one: ``mlflow-sync`` rebuilds it from Parquet), and its artifact paths are pointed into this
    folder first: a copied or moved study's store still names the original's, where MLflow would write."""
    uri = study.mlflow_uri
    if uri != study.default_mlflow_uri:
        return uri
    if not study.mlflow_db.is_file():
        raise UsageError(f"{study.mlflow_db}: the study's MLflow store is missing; 'smoothstudy mlflow-sync "
                         f"{study.root}' rebuilds it from the study's Parquet files")
    move_artifact_root(uri, (study.root / ARTIFACT_DIR).as_uri())
    return uri

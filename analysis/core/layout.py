"""Where a study keeps its files: everything under ``runs/<study>/``."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from analysis.core.errors import UsageError

SCRATCH_PREFIX = ".smoothstudy-"  # a scratch folder (study.staging); one a killed process left is the tool's own
REPORT_MARKDOWN, REPORT_HTML, REPORT_IMG_DIR = "report.md", "report.html", "img"
ANSWER_FILE, LEADERBOARD_FILE = "answer.txt", "leaderboard.csv"  # the answer, logged beside the report
RAY_DIR = "ray"  # Ray Tune's experiment folder under the study folder (the experiment's name)
RAY_TRIAL_PREFIX = "train_trial_"  # a trial folder of Ray's: <trainable's name>_<trial id>_…
MLFLOW_ARTIFACT_DIR = "mlartifacts"  # the SQLite store's artifact root, next to the database
ARTIFACT_KINDS = ("*.npy", "*.png", "*.parquet")  # what a trial leaves in its artifacts folder (trainables.artifacts)
ANY = "**"  # as the last part of a manifest path: anything below (a tree another library lays out)


@dataclass(frozen=True)
class StudyDir:
    root: Path

    @classmethod
    def of(cls, storage: str | Path, name: str) -> StudyDir:
        return cls(Path(storage).expanduser().absolute() / name)

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def study_file(self) -> Path:  # the study file as it was run (resume reads it back)
        return self.root / "study.yaml"

    @property
    def meta_file(self) -> Path:
        return self.root / "study.json"

    def meta(self) -> dict[str, Any]:
        """``study.json``: how the study was run (empty before it started); one that is not the JSON
        smoothstudy wrote is a ``UsageError`` naming the file."""
        if not self.meta_file.exists():
            return {}
        try:
            meta = json.loads(self.meta_file.read_text())
        except ValueError as err:  # also UnicodeDecodeError
            raise UsageError(f"{self.meta_file}: not the JSON smoothstudy wrote ({str(err)[:120]})") from None
        if not isinstance(meta, dict):
            raise UsageError(f"{self.meta_file}: not the JSON smoothstudy wrote (a {type(meta).__name__})")
        return meta

    @property
    def study_id(self) -> str:
        """Unique per study run (the tag its MLflow runs are found by); the name for a study that has none."""
        return self.meta().get("study_id") or self.name

    @property
    def optuna_storage(self) -> str:
        """The Optuna storage the study uses: ``--optuna-storage`` as recorded, else ``optuna.db`` here."""
        return self.meta().get("optuna_storage") or self.optuna_uri

    def trial_artifacts(self, trial_id: str) -> Path | None:
        """The artifacts folder of a trial's latest Ray checkpoint under ``ray/``, if it is still there."""
        found = sorted(self.ray.glob(f"*_{trial_id}_*/checkpoint_*/artifacts"))
        return found[-1] if found else None

    @property
    def parquet(self) -> Path:
        from analysis.core.tables import PARQUET_DIR  # pyarrow: not imported before a refusal

        return self.root / PARQUET_DIR

    @property
    def ray(self) -> Path:
        return self.root / RAY_DIR

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def default_mlflow_uri(self) -> str:
        return f"sqlite:///{self.mlflow_db}"

    @property
    def mlflow_uri(self) -> str:
        """The tracking store the study logs to: ``--mlflow-uri`` as recorded, else ``mlflow.db`` here."""
        return self.meta().get("mlflow_uri") or self.default_mlflow_uri

    @property
    def optuna_db(self) -> Path:
        return self.root / "optuna.db"

    @property
    def optuna_uri(self) -> str:
        return f"sqlite:///{self.optuna_db}"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    def foreign_entries(self) -> Iterator[str]:
        """Every path under ``root`` (relative, in sorted walking order) that a study does not write: a file that
        matches no path of ``study_manifest()``, or a folder no path of it passes through."""
        for top, dirs, files in os.walk(self.root):
            dirs.sort()
            rel = Path(top).relative_to(self.root).parts
            links = [d for d in dirs if (Path(top) / d).is_symlink()]  # never followed: judged as files
            dirs[:] = [d for d in dirs if d not in links]
            for name in sorted([*files, *links]):
                if not in_manifest((*rel, name), folder=False):
                    yield "/".join((*rel, name))
            for name in list(dirs):
                if not in_manifest((*rel, name), folder=True):
                    dirs.remove(name)
                    yield "/".join((*rel, name)) + "/"


@functools.cache
def study_manifest() -> tuple[tuple[str, ...], ...]:
    """What a study writes under its folder, each path a tuple of name patterns (``fnmatch``, one per level).
    ``run --force`` replaces a folder only when every entry in it, at every depth, is one of these."""
    from analysis.core.tables import (
        COMMON_METADATA,
        EPOCHS_DIR,
        MATRICES,
        PART_GLOB,
        RERUNS_DIR,
        SAMPLES_DIR,
        TRIALS_FILE,
    )

    study = StudyDir(Path())
    results = [(TRIALS_FILE,), (f".{TRIALS_FILE}.*.tmp",)]  # a results root (analysis.core.tables)
    for table in (EPOCHS_DIR, SAMPLES_DIR, MATRICES.path):
        results += [(table, PART_GLOB), (table, COMMON_METADATA), (table, ".*.tmp")]
    databases = (study.mlflow_db.name, study.optuna_db.name)
    # a Ray trial's folder: Ray's files, and a checkpoint with the trial's state and artifacts (trainables)
    trial = [("params.json",), ("params.pkl",), ("result.json",), ("progress.csv",), ("events.out.tfevents.*",),
             ("error.txt",), ("error.pkl",), ("checkpoint_*", "*.pt"),
             *(("checkpoint_*", "artifacts", kind) for kind in ARTIFACT_KINDS)]
    # an MLflow run's artifacts: a trial's (as above), the parent run's study file and report
    logged = [(kind,) for kind in ARTIFACT_KINDS] + [(study.study_file.name,), (study.report_dir.name, REPORT_MARKDOWN),
                                                   (study.report_dir.name, REPORT_HTML),
                                                   (study.report_dir.name, ANSWER_FILE), (study.report_dir.name, LEADERBOARD_FILE)]
    return (
        (study.study_file.name,), (study.meta_file.name,), ("mlflow_runs.json",),  # the run map of earlier versions
        *((db + suffix,) for db in databases for suffix in ("", "-journal", "-wal", "-shm")),
        (f"{SCRATCH_PREFIX}*", ANY),
        *((study.parquet.name, *path) for path in results),
        *((study.parquet.name, RERUNS_DIR, *path) for path in results),
        (study.report_dir.name, REPORT_MARKDOWN), (study.report_dir.name, REPORT_HTML),
        (study.report_dir.name, ANSWER_FILE), (study.report_dir.name, LEADERBOARD_FILE),
        (study.report_dir.name, REPORT_IMG_DIR, "*.png"), (study.report_dir.name, f"{SCRATCH_PREFIX}*", ANY),
        (RAY_DIR, "tuner.pkl"), (RAY_DIR, "trainable.pkl"), (RAY_DIR, ".validate_storage_marker"),
        (RAY_DIR, "*[_-]state-*.json"), (RAY_DIR, "*[_-]state-*.pkl"),
        *((RAY_DIR, f"{RAY_TRIAL_PREFIX}*", *path) for path in trial),
        *((MLFLOW_ARTIFACT_DIR, "*", "artifacts", *path) for path in logged),  # <run id>/artifacts/…
        *((MLFLOW_ARTIFACT_DIR, "*", "*", "artifacts", *path) for path in logged),  # <experiment id>/<run id>/…
    )


def in_manifest(parts: tuple[str, ...], folder: bool) -> bool:
    """``parts`` (a path relative to the study folder) is one of the manifest's: a file matches one whole; a
    folder is on the way to one."""
    for path in study_manifest():
        for i, part in enumerate(parts):
            if i >= len(path) or not fnmatchcase(part, path[i]):
                break
            if path[i + 1:i + 2] == (ANY,) or (i == len(parts) - 1 and (folder and i + 1 < len(path)
                                                                        or not folder and i + 1 == len(path))):
                return True
    return False

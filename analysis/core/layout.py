"""Where a study keeps its files: everything under ``runs/<study>/``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.core.errors import UsageError
from analysis.core.tables import PARQUET_DIR

RAY_DIR = "ray"  # Ray Tune's experiment (state and checkpoints) under the study's Ray storage path


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

    @property
    def own_names(self) -> frozenset[str]:
        """Every name the tool writes directly under ``root``; ``--force`` deletes a folder holding only these."""
        databases = (self.mlflow_db.name, self.optuna_db.name)
        return frozenset({
            self.study_file.name, self.meta_file.name, self.parquet.name, self.ray.name, self.report_dir.name,
            "mlartifacts",  # the SQLite store's artifact root (sinks.mlflow_runs)
            "mlflow_runs.json",  # the trial -> MLflow run map of earlier versions
            *databases, *(db + suffix for db in databases for suffix in ("-journal", "-wal", "-shm")),
        })

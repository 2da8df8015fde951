"""Where a study keeps its files: everything under ``runs/<study>/``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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

    @property
    def parquet(self) -> Path:
        return self.root / "parquet"

    @property
    def ray(self) -> Path:
        return self.root / "ray"

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def default_mlflow_uri(self) -> str:
        return f"sqlite:///{self.mlflow_db}"

    @property
    def optuna_db(self) -> Path:
        return self.root / "optuna.db"

    @property
    def optuna_uri(self) -> str:
        return f"sqlite:///{self.optuna_db}"

    @property
    def run_map(self) -> Path:
        return self.root / "mlflow_runs.json"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def own_names(self) -> frozenset[str]:
        """Every name the tool writes directly under ``root``; ``--force`` deletes a folder holding only these."""
        databases = (self.mlflow_db.name, self.optuna_db.name)
        return frozenset({
            self.study_file.name, self.meta_file.name, self.parquet.name, self.ray.name, self.run_map.name,
            self.report_dir.name, "mlartifacts",  # the SQLite store's artifact root (sinks.mlflow)
            *databases, *(db + suffix for db in databases for suffix in ("-journal", "-wal", "-shm")),
        })

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
    def optuna_uri(self) -> str:
        return f"sqlite:///{self.root / 'optuna.db'}"

    @property
    def run_map(self) -> Path:
        return self.root / "mlflow_runs.json"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

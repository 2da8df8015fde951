"""Where a study keeps its files: everything under ``runs/<study>/``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
        """``study.json``: how the study was run (empty before it started)."""
        return json.loads(self.meta_file.read_text()) if self.meta_file.exists() else {}

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
    def report_dir(self) -> Path:
        return self.root / "report"

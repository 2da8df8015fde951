"""The study's MLflow writing (the live MLflow sink and the Optuna link, which needs the sink's run ids) in a
process of its own: MLflow's SQL store costs ~20 ms of CPU a result, which in the driver slowed Tune's own
loop through the GIL. MLflow is a view of Parquet: during a study, results that do not fit its queue are
dropped (never holding the driver) and ``smoothstudy mlflow-sync`` back-fills them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MLFLOW_QUEUE = 2000  # events: about a minute of what MLflow's SQLite store writes (~35 results/s)
# A view: on a busy driver machine, Tune and the trials come first, Ray's trial workers (nice 15) included.
MLFLOW_NICE = 19


@dataclass(frozen=True)
class MlflowGroup:
    """Picklable: what the child process needs to build the sinks (they hold open clients; never pickled)."""

    tracking_uri: str
    experiment: str
    study_name: str
    study_file: Path | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    study_id: str | None = None
    optuna_storage: str | None = None  # the link to Optuna trials, for a study with a search

    @classmethod
    def of_study(cls, spec: Any, study: Any, mlflow_uri: str | None, settings: dict[str, Any]) -> MlflowGroup:
        """A study's (``spec``, ``StudyDir``): its tracking URI unless ``mlflow_uri`` names another."""
        return cls(mlflow_uri or study.default_mlflow_uri, experiment=spec.name, study_name=spec.name,
                   study_file=study.study_file, settings=settings, study_id=study.study_id,
                   optuna_storage=study.optuna_storage)

    def __call__(self) -> list:
        from study.sinks.mlflow_sink import MlflowSink

        mlflow = MlflowSink(self.tracking_uri, experiment=self.experiment, study_name=self.study_name,
                            study_file=self.study_file, settings=self.settings, study_id=self.study_id)
        if self.optuna_storage is None:
            return [mlflow]
        from study.optuna_link import OptunaLink

        return [mlflow, OptunaLink(self.optuna_storage, self.study_name, mlflow)]


def mlflow_sinks(group: MlflowGroup, live: bool = True):
    """``group`` in its process. ``live``: a study's (drop what does not fit, lower CPU priority); otherwise
    every event waits for room (reruns: nothing to hold up)."""
    from study.sinks.process import ProcessSinks

    if live:
        return ProcessSinks(group, "mlflow", max_queue=MLFLOW_QUEUE, when_full="drop", nice=MLFLOW_NICE)
    return ProcessSinks(group, "mlflow")

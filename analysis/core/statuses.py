"""A trial's status, as the ``status`` column of the trials table records it, and its one MLflow mapping."""

from __future__ import annotations

from enum import Enum


class TrialStatus(str, Enum):  # enum.StrEnum once Python 3.10 is no longer supported
    __str__ = str.__str__
    __format__ = str.__format__

    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED = "stopped"  # by ASHA, before its last epoch
    DIVERGED = "diverged"  # the loss became NaN or inf
    ERROR = "error"
    LOST = "lost"  # dropped by a driver crash; another trial took its place


# The statuses of a trial that ran to its end or was stopped early: it has a final value.
FINISHED = (TrialStatus.COMPLETED, TrialStatus.STOPPED)
# The statuses of a trial that broke (LOST is not among them: it was replaced, not failed).
BROKEN = (TrialStatus.DIVERGED, TrialStatus.ERROR)
# The statuses of a trial that holds no place in a study's count of ended trials.
NOT_ENDED = (TrialStatus.RUNNING, TrialStatus.LOST)

# A trial's status -> the end state of its MLflow run (mlflow.entities.RunStatus names); a running trial has none.
MLFLOW_RUN_STATUS: dict[TrialStatus, str] = {
    TrialStatus.COMPLETED: "FINISHED",
    TrialStatus.STOPPED: "FINISHED",
    TrialStatus.DIVERGED: "FAILED",
    TrialStatus.ERROR: "FAILED",
    TrialStatus.LOST: "KILLED",
}


def mlflow_run_status(status: str) -> str | None:
    """The MLflow end state of a trial with ``status``; None while it runs (or for a status this version
    does not know)."""
    try:
        return MLFLOW_RUN_STATUS.get(TrialStatus(status))
    except ValueError:
        return None

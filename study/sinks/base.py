"""Where results go. Sinks know nothing about Ray: the Tune callback in ``study.callback`` and local reruns
both drive them through the calls of :class:`ResultSink`, always from the driver process (one writer per
store). A sink may also take a whole batch of events at once (``write_batch``).

Metric keys are the same strings everywhere (Ray result, MLflow metric, Parquet column): ``train/loss``,
``val/acc``, ``test/aurc_lognorm`` ...
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from analysis.core.statuses import TrialStatus


@dataclass
class TrialStart:
    trial_id: str
    config: dict[str, Any]  # flat: "loss", "loss_params.alpha", "lr", ... (see search_spaces.flatten)
    tags: dict[str, str] = field(default_factory=dict)  # e.g. {"kind": "rerun", "source_trial": "…"}
    at: float | None = None  # when the trial started (time.time()), when it is not now: a rerun recorded after it ran


@dataclass
class TrialEnd:
    trial_id: str
    status: TrialStatus
    reason: str = ""  # why it stopped: "asha", "diverged: train/loss became nan in epoch 3", traceback head
    final_metrics: dict[str, float] = field(default_factory=dict)  # the last result (test/* included)
    artifacts_dir: Path | None = None  # samples.parquet, *.png, *.npy written by the trial
    at: float | None = None  # when the trial ended (time.time()), when it is not now


@dataclass
class EpochResult:
    trial_id: str
    epoch: int
    metrics: dict[str, Any]


SinkEvent = TrialStart | EpochResult | TrialEnd


class ResultSink(ABC):
    """A place results go: every call the Tune callback, the sink loops and reruns make on a sink. A sink
    writes the three events; the rest has a default that fits a sink writing as it is called, with no
    Parquet of its own."""

    # Writes the study's source of truth (Parquet): the callback waits for it where Tune records a checkpoint,
    # and a resumed driver asks it what the study wrote before (``epochs_seen``, ``running_trials``).
    holds_truth: ClassVar[bool] = False
    # Copies a trial's artifacts folder when its end is handed over: no need to wait for it before Ray
    # deletes the folder.
    copies_artifacts: ClassVar[bool] = False

    @abstractmethod
    def trial_started(self, start: TrialStart) -> None: ...

    @abstractmethod
    def epoch(self, trial_id: str, epoch: int, metrics: dict[str, float]) -> None: ...

    @abstractmethod
    def trial_ended(self, end: TrialEnd) -> None: ...

    def write_batch(self, events: list[SinkEvent]) -> None:
        """``events`` in order: one call each, unless the sink writes a batch at once."""
        for event in events:
            if isinstance(event, EpochResult):
                self.epoch(event.trial_id, event.epoch, event.metrics)
            elif isinstance(event, TrialStart):
                self.trial_started(event)
            else:
                self.trial_ended(event)

    def missed_results(self, count: int) -> None:
        """``count`` results in all never reached this sink (a queue in front of it dropped them)."""
        return None  # by default: nothing to do

    def flush(self) -> None:
        """Returns once everything handed over before this call is written."""
        return None  # by default: nothing to do

    def epochs_seen(self) -> dict[str, set[int]]:
        """The epochs each trial has in the source of truth, as far as this sink knows."""
        return {}

    def running_trials(self) -> set[str]:
        """Trials the source of truth has as started or reporting but never ended."""
        return set()

    def close(self) -> None:
        """Writes what is left; the sink takes no more events."""
        return None  # by default: nothing to do

"""Where results go. Sinks know nothing about Ray: the Tune callback in ``study.callback`` and local reruns
both drive them through these calls, always from the driver process (one writer per store). A sink may also
take a whole batch of events at once (``write_batch``); :func:`write_events` uses it when it is there.

Metric keys are the same strings everywhere (Ray result, MLflow metric, Parquet column): ``train/loss``,
``val/acc``, ``test/aurc_lognorm`` ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

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


class ResultSink(Protocol):
    def trial_started(self, start: TrialStart) -> None: ...

    def epoch(self, trial_id: str, epoch: int, metrics: dict[str, float]) -> None: ...

    def trial_ended(self, end: TrialEnd) -> None: ...

    def close(self) -> None: ...


def write_events(sink: Any, events: list[SinkEvent]) -> None:
    """Hands ``events`` (in order) to ``sink``: all at once if it has ``write_batch``, else one call each."""
    batch = getattr(sink, "write_batch", None)
    if batch is not None:
        batch(events)
        return
    for event in events:
        if isinstance(event, EpochResult):
            sink.epoch(event.trial_id, event.epoch, event.metrics)
        elif isinstance(event, TrialStart):
            sink.trial_started(event)
        else:
            sink.trial_ended(event)

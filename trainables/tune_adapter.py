"""The one place the training loop meets Ray Tune: report every epoch, save a checkpoint when the
:class:`CheckpointPolicy` says so, resume from one.

The final checkpoint also carries the trial's artifacts (per-sample test outputs, plots, learned target
matrices) under ``artifacts/``; the driver's callback hands them to the sinks.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ray import tune

from trainables.artifacts import write_trial_artifacts
from trainables.config import TrialConfig, resolve_trial_config
from trainables.loop import TrainingDiverged, make_trainer, peak_memory_mb, reset_peak_memory

STATE_FILE = "state.pt"
ARTIFACTS_DIR = "artifacts"


@dataclass(frozen=True)
class CheckpointPolicy:
    """When a trial saves its state: every ``every_epochs`` epochs and/or every ``every_s`` seconds since its
    last checkpoint, and always at its last epoch and at each epoch in ``decision_epochs`` (where a
    scheduler such as ASHA may stop it, so a stopped trial ends on a checkpoint of its last result)."""

    every_epochs: int | None = None
    every_s: float | None = None
    decision_epochs: frozenset[int] = frozenset()

    def due(self, epoch: int, last_epoch: int, seconds_since: float, done: bool) -> bool:
        return (done or epoch in self.decision_epochs
                or (self.every_epochs is not None and epoch - last_epoch >= self.every_epochs)
                or (self.every_s is not None and seconds_since >= self.every_s))


EVERY_EPOCH = CheckpointPolicy(every_epochs=1)


def train_trial(
    config: dict[str, Any], base: dict[str, Any], objectives: tuple[str, ...] = (), num_threads: int = 1,
    policy: CheckpointPolicy = EVERY_EPOCH,
) -> None:
    """Ray Tune function trainable. ``config`` is what the search sampled, ``base`` the study's fixed settings."""
    torch.set_num_threads(max(1, num_threads))  # one trial per CPU it was given: no oversubscription
    trainer = make_trainer(TrialConfig.from_dict(resolve_trial_config(base, config)))
    reset_peak_memory(trainer.device)

    def finish(directory: Path) -> dict[str, Any]:
        final = trainer.final_evaluation()
        write_trial_artifacts(final, directory / ARTIFACTS_DIR)
        return {**final.metrics, "sys/peak_mem_mb": peak_memory_mb(trainer.device)}

    report_epochs(trainer, finish, policy, objectives)


def report_epochs(trainer: Any, finish: Callable[[Path], dict[str, Any]], policy: CheckpointPolicy,
                  objectives: tuple[str, ...] = ()) -> None:
    """Restore ``trainer`` from Tune's checkpoint if there is one, then report each epoch until it is done.
    ``trainer``: ``done``, ``epoch``, ``train_epoch()``, ``state_dict()``, ``load_state_dict()``;
    ``finish(directory)``: the final metrics, with the trial's artifacts written under ``directory``."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            trainer.load_state_dict(torch.load(Path(d) / STATE_FILE, weights_only=True, map_location="cpu"))
    saved_epoch, saved_at = trainer.epoch, time.monotonic()
    while not trainer.done:
        try:
            metrics: dict[str, Any] = trainer.train_epoch()
        except TrainingDiverged as err:
            # Objectives are NaN so no scheduler or searcher mistakes the trial for a good one.
            tune.report({"epoch": trainer.epoch, "status": "diverged", "reason": str(err),
                         **{m: math.nan for m in objectives}})
            return
        metrics["status"] = "completed" if trainer.done else "running"
        if not policy.due(trainer.epoch, saved_epoch, time.monotonic() - saved_at, trainer.done):
            tune.report(metrics)
            continue
        with tempfile.TemporaryDirectory() as d:
            if trainer.done:
                metrics.update(finish(Path(d)))
            torch.save(trainer.state_dict(), Path(d) / STATE_FILE)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))
        saved_epoch, saved_at = trainer.epoch, time.monotonic()

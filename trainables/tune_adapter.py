"""The one place the training loop meets Ray Tune: report each epoch with a checkpoint, resume from one.

The final checkpoint also carries the trial's artifacts (per-sample test outputs, plots, learned target
matrices) under ``artifacts/``; the driver's callback hands them to the sinks.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import torch
from ray import tune

from trainables.artifacts import write_trial_artifacts
from trainables.config import TrialConfig, resolve_trial_config
from trainables.loop import TrainingDiverged, make_trainer, peak_memory_mb, reset_peak_memory

STATE_FILE = "state.pt"
ARTIFACTS_DIR = "artifacts"


def train_trial(
    config: dict[str, Any], base: dict[str, Any], objectives: tuple[str, ...] = (), num_threads: int = 1
) -> None:
    """Ray Tune function trainable. ``config`` is what the search sampled, ``base`` the study's fixed settings."""
    torch.set_num_threads(max(1, num_threads))  # one trial per CPU it was given: no oversubscription
    trainer = make_trainer(TrialConfig.from_dict(resolve_trial_config(base, config)))
    reset_peak_memory(trainer.device)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            trainer.load_state_dict(torch.load(Path(d) / STATE_FILE, weights_only=True, map_location="cpu"))
    while not trainer.done:
        try:
            metrics: dict[str, Any] = trainer.train_epoch()
        except TrainingDiverged as err:
            # Objectives are NaN so no scheduler or searcher mistakes the trial for a good one.
            tune.report({"epoch": trainer.epoch, "status": "diverged", "reason": str(err),
                         **{m: math.nan for m in objectives}})
            return
        with tempfile.TemporaryDirectory() as d:
            if trainer.done:
                final = trainer.final_evaluation()
                metrics.update(final.metrics)
                metrics["sys/peak_mem_mb"] = peak_memory_mb(trainer.device)
                write_trial_artifacts(final, Path(d) / ARTIFACTS_DIR)
            torch.save(trainer.state_dict(), Path(d) / STATE_FILE)
            metrics["status"] = "completed" if trainer.done else "running"
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))

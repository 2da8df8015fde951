"""The one place the training loop meets Ray Tune: a :class:`~trainables.trainer.Trainer` run through
:func:`~trainables.tune_reporting.report_epochs` (each epoch reported, checkpoints by the study's policy).

The final checkpoint also carries the trial's artifacts (per-sample test outputs, plots, learned target
matrices) under ``artifacts/``; the driver's callback hands them to the sinks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from ray import tune  # noqa: F401 - tests patch tune.get_checkpoint / tune.report through this module

from trainables.artifacts import write_trial_artifacts
from trainables.config import TrialConfig, resolve_trial_config
from trainables.loop import make_trainer
from trainables.peak_memory import peak_memory_mb, reset_peak_memory
from trainables.trainer import TrainingDiverged
from trainables.tune_reporting import ARTIFACTS_DIR, EVERY_EPOCH, CheckpointPolicy, report_epochs

__all__ = ["train_trial"]


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

    report_epochs(trainer, finish, policy, objectives, diverged=(TrainingDiverged,))

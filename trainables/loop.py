"""The one training loop. Used as-is by the Ray Tune adapter and by local reruns; imports no Ray/MLflow."""

from __future__ import annotations

import torch

from trainables.config import TrialConfig
from trainables.seed_group import SeedGroup
from trainables.trainer import FinalEvaluation, Trainer


def make_trainer(config: TrialConfig, device: torch.device | str | None = None) -> Trainer | SeedGroup:
    """A :class:`Trainer`, or a :class:`SeedGroup` when ``config.seeds_per_trial`` > 1."""
    return SeedGroup(config, device) if config.seeds_per_trial > 1 else Trainer(config, device)


def run_local(config: TrialConfig, device: str | None = None, on_epoch=None) -> tuple[list[dict], FinalEvaluation]:
    """Train to the end without any orchestration (local reruns, tests). Returns epoch metrics and the final
    evaluation. ``on_epoch(metrics)`` is called after each epoch."""
    trainer = make_trainer(config, device)
    history = []
    while not trainer.done:
        metrics = trainer.train_epoch()
        history.append(metrics)
        if on_epoch:
            on_epoch(metrics)
    return history, trainer.final_evaluation()

"""Several seeds of one configuration trained in one trial, one epoch each in turn."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch

from trainables.config import TrialConfig
from trainables.trainer import FinalEvaluation, Trainer, TrainingDiverged


class SeedGroup:
    """``n = seeds_per_trial`` seeds of one configuration in one trial, trained one epoch each in turn, so a trial
    of a few seconds pays Ray's per-trial cost once for all of them. Member ``i`` trains with seed
    ``seed·n + i``: the blocks of trials with different seeds (trial k of a study has seed + k) never overlap.

    Each member keeps its own torch RNG stream, so member ``i`` trains exactly as a lone :class:`Trainer` with
    its seed would. Epoch metrics: the mean over seeds under the usual keys, except ``time/train_s`` and
    ``time/eval_s`` (summed: the epoch's wall time) and ``time/images_per_s`` (all seeds' images over that
    time). Final metrics: the mean under the usual keys plus each seed's under ``seed<i>/<key>``; the
    per-sample outputs, curves and learned matrices are the first seed's, and so are the choices each seed
    makes on its own validation split (:data:`PER_SEED_CHOICES`: a mean of them is no setting any seed used,
    and NaN when one seed kept MSP), which also makes them match the per-sample columns they produced.
    A diverging seed ends the trial.
    """

    def __init__(self, config: TrialConfig, device: torch.device | str | None = None) -> None:
        self.config = config
        self.trainers: list[Trainer] = []
        self.rng_states: list[dict[str, torch.Tensor]] = []
        n = config.seeds_per_trial
        for i in range(n):
            trainer = Trainer(replace(config, seed=config.seed * n + i, seeds_per_trial=1), device)
            self.trainers.append(trainer)
            self.rng_states.append(self._rng_state())
        self.device = self.trainers[0].device

    def _rng_state(self) -> dict[str, torch.Tensor]:
        state = {"cpu": torch.get_rng_state()}
        if self.device_type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.trainers[0].device)
        return state

    @property
    def device_type(self) -> str:
        return self.trainers[0].device.type

    def _run(self, i: int, fn):
        torch.set_rng_state(self.rng_states[i]["cpu"])
        if "cuda" in self.rng_states[i]:
            torch.cuda.set_rng_state(self.rng_states[i]["cuda"], self.trainers[i].device)
        try:
            return fn(self.trainers[i])
        finally:
            self.rng_states[i] = self._rng_state()

    @property
    def epoch(self) -> int:
        return self.trainers[0].epoch

    @property
    def done(self) -> bool:
        return self.trainers[0].done

    def train_epoch(self) -> dict[str, float]:
        per_seed = []
        for i, trainer in enumerate(self.trainers):
            try:
                per_seed.append(self._run(i, Trainer.train_epoch))
            except TrainingDiverged as err:
                raise TrainingDiverged(f"seed {trainer.config.seed}: {err}") from err
        metrics = mean_metrics(per_seed)
        train_s = sum(m["time/train_s"] for m in per_seed)
        images = sum(m["time/images_per_s"] * m["time/train_s"] for m in per_seed)
        metrics["time/train_s"] = train_s
        metrics["time/eval_s"] = sum(m["time/eval_s"] for m in per_seed)
        metrics["time/images_per_s"] = images / train_s if train_s > 0 else float("nan")
        metrics["epoch"] = self.epoch
        return metrics

    def final_evaluation(self) -> FinalEvaluation:
        finals = [self._run(i, Trainer.final_evaluation) for i in range(len(self.trainers))]
        first = finals[0]
        metrics = mean_metrics([f.metrics for f in finals])
        metrics.update({k: v for k, v in first.metrics.items() if k in PER_SEED_CHOICES})
        for i, final in enumerate(finals):
            metrics.update({f"seed{i}/{k}": v for k, v in final.metrics.items()})
        return replace(first, metrics=metrics)

    def state_dict(self) -> dict[str, Any]:
        states = [{**t.state_dict(), "torch_rng": rng["cpu"]} for t, rng in zip(self.trainers, self.rng_states)]
        return {"seeds": states}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["seeds"]) != len(self.trainers):
            raise ValueError(f"checkpoint has {len(state['seeds'])} seeds, the config seeds_per_trial="
                             f"{len(self.trainers)}; allowed: the same number")
        for i, (trainer, seed_state) in enumerate(zip(self.trainers, state["seeds"])):
            trainer.load_state_dict(seed_state)
            self.rng_states[i] = self._rng_state()


# Fitted or selected per seed on its validation split: a seed group reports the first seed's, not the mean.
PER_SEED_CHOICES = frozenset({"test/temperature", "test/lognorm_p", "test/lognorm_fallback"})


def mean_metrics(per_seed: list[dict[str, float]]) -> dict[str, float]:
    """Key-wise mean of the numeric metrics the seeds share."""
    keys = [k for k in per_seed[0] if all(k in m for m in per_seed)]
    return {k: float(np.mean([m[k] for m in per_seed])) for k in keys
            if isinstance(per_seed[0][k], (int, float)) and not isinstance(per_seed[0][k], bool)}

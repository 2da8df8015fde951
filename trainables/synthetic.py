"""A synthetic trial for scale tests: the real Tune reporting loop
(:func:`trainables.tune_reporting.report_epochs`, checkpoint policy included), with training replaced by a
sleep, results of a real trial's shape (about 60 metrics, the same each time a given epoch is run) and a
checkpoint of a chosen size.

Config keys (all optional): ``epochs``, ``epoch_s`` (the sleep per epoch), ``checkpoint_mb``, ``seed``,
``every_epochs``/``every_s`` (the checkpoint policy; its state saved as NumPy arrays rather than with torch,
so that hundreds of workers fit in memory), and ``die_at_epoch`` with ``die_marker``: the worker
process exits right after reporting that epoch, once (the marker file says it happened), as a killed worker
would.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from trainables.tune_reporting import CheckpointPolicy, report_epochs

EPOCH_METRICS = ("train/loss", "train/acc", "train/lr", "time/train_s", "time/eval_s", "time/images_per_s")
SCORES = ("acc", "nll", "brier", "ece", "aurc", "eaurc", "cov_at_5", "auroc", "auroc_lognorm", "aurc_lognorm",
          "ece_ts", "entropy", "msp", "r2", "intra")
PREFIXES = ("val", "test", "shift")  # val/* every epoch; test/* and shift/* too: the real final result's size


def metric_names() -> tuple[str, ...]:
    return EPOCH_METRICS + tuple(f"{p}/{s}" for p in PREFIXES for s in SCORES)


def synthetic_metrics(seed: int, epoch: int) -> dict[str, float]:
    """Deterministic in (seed, epoch): a replayed epoch reports the same values."""
    return {name: 0.5 + 0.4 * math.sin(seed * 7.0 + epoch * 0.3 + i) for i, name in enumerate(metric_names())}


class SyntheticTrainer:
    def __init__(self, epochs: int, epoch_s: float, checkpoint_mb: float = 0.0, seed: int = 0,
                 die_at_epoch: int | None = None, die_marker: str | None = None) -> None:
        self.epochs, self.epoch_s, self.seed = epochs, epoch_s, seed
        self.die_at_epoch, self.die_marker = die_at_epoch, die_marker
        self.epoch = 0
        self.restored_from = 0  # the epoch of the checkpoint this run started from
        self.weights = np.zeros(int(checkpoint_mb * 2**20) // 4, dtype=np.float32)
        self._next = time.monotonic()

    @property
    def done(self) -> bool:
        return self.epoch >= self.epochs

    def train_epoch(self) -> dict[str, Any]:
        if self.die_at_epoch is not None and self.epoch == self.die_at_epoch and self.die_marker \
                and not Path(self.die_marker).exists():
            Path(self.die_marker).touch()
            os._exit(1)  # after reporting epoch die_at_epoch: as if the worker were killed
        # a fixed rate, whatever reporting costs: the next epoch is due epoch_s after the last was due
        self._next = max(self._next + self.epoch_s, time.monotonic())
        time.sleep(max(0.0, self._next - time.monotonic()))
        self.epoch += 1
        return {"epoch": self.epoch, "restored_from": self.restored_from, **synthetic_metrics(self.seed, self.epoch)}

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": np.int64(self.epoch), "weights": self.weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.weights = np.asarray(state["weights"])
        self.restored_from = self.epoch


def synthetic_trial(config: dict[str, Any]) -> None:
    """Ray Tune function trainable."""
    trainer = SyntheticTrainer(int(config.get("epochs", 10)), float(config.get("epoch_s", 0.1)),
                               float(config.get("checkpoint_mb", 0.0)), int(config.get("seed", 0)),
                               config.get("die_at_epoch"), config.get("die_marker"))
    policy = CheckpointPolicy(config.get("every_epochs"), config.get("every_s"))

    def finish(directory: Path) -> dict[str, Any]:
        return {}

    report_epochs(trainer, finish, policy, save=save_npz, load=load_npz)


def save_npz(state: dict[str, Any], path: Path) -> None:
    """Like the real trial's state file (arrays only), without importing torch in hundreds of workers."""
    with open(path, "wb") as f:
        np.savez(f, **state)


def load_npz(path: Path) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}

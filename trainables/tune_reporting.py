"""How a trial talks to Ray Tune, whatever it trains: report every epoch, save a checkpoint when the
:class:`CheckpointPolicy` says so, resume from one. Light on purpose (no torch until a checkpoint is saved or
loaded): the synthetic trial of the scale benchmarks runs hundreds of these in one machine's memory.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import tune

from analysis.core.statuses import TrialStatus

STATE_FILE = "state.pt"
ARTIFACTS_DIR = "artifacts"
# The key of a Tune result that carries its metrics as one value: (name, value) pairs
PACKED_METRICS = "packed_metrics"


def pack_result(metrics: dict[str, Any], objectives: tuple[str, ...]) -> dict[str, Any]:
    """The result a trial hands Tune: the objectives and the keys without a namespace (``epoch``,
    ``status`` …) as they are, every other metric (``val/nll``, ``test/…``) packed into one value of
    (name, value) pairs. Tune keeps a running max, min, mean and last-5 and last-10 windows of every number
    of a result, per trial, for the whole study, and writes them into every experiment snapshot: with ~60
    metrics a trial that cost the driver ~175 kB and ~0.2 ms a result, for numbers only the objectives
    need. The study's sinks read them all back with :func:`result_metrics`."""
    kept = {k: v for k, v in metrics.items() if "/" not in k or k in objectives}
    packed = tuple((k, v) for k, v in metrics.items() if k not in kept)
    return {**kept, PACKED_METRICS: packed} if packed else kept


def result_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The namespaced numeric metrics of a Tune result (``val/acc`` …), packed or not, without Ray's
    bookkeeping."""
    pairs = list(result.items()) + [tuple(pair) for pair in result.get(PACKED_METRICS) or ()]
    return {k: float(v) for k, v in pairs
            if "/" in k and isinstance(v, (int, float)) and not isinstance(v, bool)}


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


def save_state(state: dict[str, Any], path: Path) -> None:
    import torch

    torch.save(state, path)


def load_state(path: Path) -> dict[str, Any]:
    import torch

    return torch.load(path, weights_only=True, map_location="cpu")  # tensors only: no pickled code


def report_epochs(trainer: Any, finish: Callable[[Path], dict[str, Any]], policy: CheckpointPolicy,
                  objectives: tuple[str, ...] = (), diverged: tuple[type[Exception], ...] = (),
                  save: Callable[[dict[str, Any], Path], None] = save_state,
                  load: Callable[[Path], dict[str, Any]] = load_state) -> None:
    """Restore ``trainer`` from Tune's checkpoint if there is one, then report each epoch until it is done.
    ``trainer``: ``done``, ``epoch``, ``train_epoch()``, ``state_dict()``, ``load_state_dict()``;
    ``finish(directory)``: the final metrics, with the trial's artifacts written under ``directory``;
    ``diverged``: the errors of ``train_epoch`` that end the trial as diverged."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            trainer.load_state_dict(load(Path(d) / STATE_FILE))
    saved_epoch, saved_at = trainer.epoch, time.monotonic()
    while not trainer.done:
        try:
            metrics: dict[str, Any] = trainer.train_epoch()
        except diverged as err:
            # Objectives are NaN so no scheduler or searcher mistakes the trial for a good one.
            tune.report({"epoch": trainer.epoch, "status": TrialStatus.DIVERGED.value, "reason": str(err),
                         **{m: math.nan for m in objectives}})
            return
        metrics["status"] = (TrialStatus.COMPLETED if trainer.done else TrialStatus.RUNNING).value
        if not policy.due(trainer.epoch, saved_epoch, time.monotonic() - saved_at, trainer.done):
            tune.report(pack_result(metrics, objectives))
            continue
        with tempfile.TemporaryDirectory() as d:
            if trainer.done:
                metrics.update(finish(Path(d)))
            save(trainer.state_dict(), Path(d) / STATE_FILE)
            tune.report(pack_result(metrics, objectives), checkpoint=tune.Checkpoint.from_directory(d))
        saved_epoch, saved_at = trainer.epoch, time.monotonic()

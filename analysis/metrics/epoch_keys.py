"""The metric keys a trial reports every epoch: the only ones a study can optimise (ASHA and the searcher
compare trials on them epoch by epoch). The ``val/`` keys are whatever ``epoch_metrics`` returns; the training
loop adds the ``train/`` ones (tests check both against a real trainer's epoch)."""

from __future__ import annotations

from functools import cache

import numpy as np

from analysis.metrics.evaluation import epoch_metrics

TRAIN_EPOCH_KEYS = ("train/loss", "train/acc", "train/lr")


@cache
def epoch_metric_keys() -> tuple[str, ...]:
    probe = epoch_metrics(np.array([[2.0, 0.0], [0.0, 2.0]]), np.array([0, 1]))  # two samples: only the keys count
    return (*(f"val/{k}" for k in probe), *TRAIN_EPOCH_KEYS)

"""ASHA's rungs: the epochs at which Ray's ``AsyncHyperBandScheduler`` (one bracket) compares a trial with
the others and may stop it. The one rule: the scheduler's checkpoints, the report's dotted lines and the
search benchmark's simulated ASHA all read it from here.

Ray's rule, step by step (``ray.tune.schedulers.async_hyperband``): the milestones are
``grace · rf^k`` for ``k < int(log(max_t / grace) / log(rf) + 1)``; at each reported epoch below ``max_t``
a trial is compared at the highest milestone at or below that epoch it has not yet been compared at, if
any; at ``max_t`` it ends whatever ASHA thinks. So a trial is compared at the first epoch at or past a
milestone, once per epoch at most: with ``rf < 2`` several milestones fall in one epoch and the ones skipped
are taken at later epochs that lie past no new milestone.
"""

from __future__ import annotations

import numpy as np


def asha_rungs(grace_period: int, max_t: int, reduction_factor: float) -> list[int]:
    """The epochs (ascending) at which ASHA may stop a trial that reports every epoch."""
    count = int(np.log(max_t / grace_period) / np.log(reduction_factor) + 1)  # Ray's expression, to the bit
    milestones = [grace_period * reduction_factor**k for k in range(count)]
    compared: set[int] = set()
    epochs = []
    for epoch in range(1, max_t):
        due = [k for k in range(count) if milestones[k] <= epoch and k not in compared]
        if due:
            compared.add(max(due))
            epochs.append(epoch)
    return epochs


def study_rungs(asha, epochs: int) -> list[int]:
    """The rungs of a study file's ``asha`` section (none when ASHA is off); ``epochs``: the trials' epochs."""
    if not asha.enabled:
        return []
    return asha_rungs(asha.grace_period, asha.max_t or epochs, asha.reduction_factor)

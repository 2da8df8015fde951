"""Post-hoc logit normalisation: choose ``p`` on validation, fall back to MSP when it does not help.

Method (Cattelan & Silva; Xia et al., Sec. 4): for each ``p`` in the grid (default 0..9, with ``p = 0``
meaning the centred max logit without normalisation, see :mod:`analysis.metrics.scores`) compute the
validation AURC of the ``lognorm`` score; take the ``p`` with the lowest AURC (the smallest ``p`` on equal
AURC). Keep it only if its AURC is strictly lower than the validation AURC of MSP; otherwise keep MSP
(``p = None``). The chosen score is then applied unchanged on the test split. Because the logits are centred
and MSP is shift-invariant, adding one constant to all logits leaves the choice unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.metrics._inputs import as_labels, as_logits
from analysis.metrics.scores import compute_score
from analysis.metrics.selective import aurc

DEFAULT_P_GRID: tuple[float, ...] = tuple(float(p) for p in range(10))


@dataclass(frozen=True)
class LognormChoice:
    p: float | None  # None: MSP kept
    val_aurc: float  # validation AURC of the kept score
    msp_val_aurc: float
    grid_aurc: dict[float, float] = field(default_factory=dict)

    @property
    def fallback(self) -> bool:
        return self.p is None


def select_lognorm_p(
    val_logits: Any,
    val_labels: Any,
    grid: tuple[float, ...] = DEFAULT_P_GRID,
    method: str = "trapezoid",
    ties: str = "average",
) -> LognormChoice:
    z = as_logits(val_logits, "val_logits")
    y = as_labels(val_labels, z.shape[0], z.shape[1], "val_labels")
    if len(grid) == 0 or any(not math.isfinite(float(p)) or float(p) < 0 for p in grid):
        raise ValueError(f"grid={grid!r} is not allowed; allowed: a non-empty sequence of finite p >= 0")
    correct = z.argmax(axis=1) == y
    msp_aurc = aurc(compute_score("msp", z), correct, method=method, ties=ties)
    grid_aurc = {
        float(p): aurc(compute_score("lognorm", z, p=float(p)), correct, method=method, ties=ties)
        for p in grid
    }
    best_p = min(grid_aurc, key=lambda p: (grid_aurc[p], p))
    if grid_aurc[best_p] < msp_aurc:
        return LognormChoice(best_p, grid_aurc[best_p], msp_aurc, grid_aurc)
    return LognormChoice(None, msp_aurc, msp_aurc, grid_aurc)


def chosen_score(logits: Any, p: float | None) -> np.ndarray:
    """The ``lognorm`` score at ``p``, or MSP when ``p`` is None or NaN (the fallback)."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return compute_score("msp", logits)
    return compute_score("lognorm", logits, p=float(p))

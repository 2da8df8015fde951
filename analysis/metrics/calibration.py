"""Classification and calibration metrics: accuracy, NLL, Brier score, ECE and temperature scaling.

All functions take logits ``(N, K)`` and integer labels ``(N,)`` (torch tensors or arrays) and compute in
float64; probabilities are the softmax of the logits.

ECE binning (Guo et al., 2017, as used by Lienen & Hüllermeier with 15 bins): ``bins`` equal-width bins over
the top-label confidence with edges ``e_m = m / bins`` (the float nearest to it). Bins are closed on the
right: bin ``m`` (1-based) holds ``e_{m-1} < c <= e_m``, so a confidence lying exactly on an interior edge
falls into the lower bin, a confidence of exactly 1.0 falls into the last bin and 0.0 into the first.
``ECE = sum_m |B_m|/N * |acc(B_m) - conf(B_m)|`` over non-empty bins. torchmetrics uses bins closed on the
left and a separate bin for 1.0; the two agree whenever no confidence lies on an edge or equals 1.0.

Brier score: ``mean_n sum_k (p_nk - y_nk)^2`` with one-hot ``y`` (range [0, 2]).

Temperature scaling: one ``T > 0`` minimising the validation NLL of ``softmax(z / T)``; the NLL is convex
in ``1/T``, so a bounded scalar search over ``log(1/T)`` finds the minimum. ``T = 1`` is returned unless the
fitted temperature strictly lowers the NLL, so scaling never raises the validation NLL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, logsumexp, softmax

from analysis.metrics._inputs import (
    as_confidences,
    as_correct,
    as_labels,
    as_logits,
    check_positive_int,
)
from analysis.metrics.scores import compute_score

DEFAULT_BINS = 15


def _logits_labels(logits: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    z = as_logits(logits)
    y = as_labels(labels, z.shape[0], z.shape[1])
    return z, y


def probabilities(logits: Any) -> np.ndarray:
    """Softmax of the logits, float64 (N, K)."""
    return softmax(as_logits(logits), axis=1)


def top_label(logits: Any) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, prediction): the top-label softmax probability and the arg-max class (first on ties)."""
    z = as_logits(logits)
    return compute_score("msp", z), z.argmax(axis=1)


def accuracy(logits: Any, labels: Any) -> float:
    z, y = _logits_labels(logits, labels)
    return float((z.argmax(axis=1) == y).mean())


def nll(logits: Any, labels: Any) -> float:
    """Mean negative log-likelihood (natural log) of the true labels."""
    return _mean_nll(*_logits_labels(logits, labels))


def _mean_nll(z: np.ndarray, y: np.ndarray) -> float:
    return float(-log_softmax(z, axis=1)[np.arange(len(y)), y].mean())


def brier(logits: Any, labels: Any) -> float:
    """Multi-class Brier score: mean over samples of the squared distance to the one-hot label."""
    z, y = _logits_labels(logits, labels)
    p = softmax(z, axis=1)
    return float(((p * p).sum(axis=1) - 2.0 * p[np.arange(len(y)), y] + 1.0).mean())


@dataclass(frozen=True)
class ReliabilityDiagram:
    """Per-bin data of a reliability diagram; ``confidence``/``accuracy`` are NaN for empty bins."""

    edges: np.ndarray  # (bins + 1,)
    confidence: np.ndarray  # (bins,) mean top-label confidence in the bin
    accuracy: np.ndarray  # (bins,) fraction correct in the bin
    count: np.ndarray  # (bins,) int64 samples in the bin

    @property
    def ece(self) -> float:
        filled = self.count > 0
        gaps = np.abs(self.accuracy[filled] - self.confidence[filled])
        return float((self.count[filled] * gaps).sum() / self.count.sum())


def bin_edges(bins: int) -> np.ndarray:
    bins = check_positive_int(bins, "bins")
    return np.arange(bins + 1, dtype=np.float64) / bins


def reliability_diagram(confidences: Any, correct: Any, bins: int = DEFAULT_BINS) -> ReliabilityDiagram:
    """Bin top-label confidences (right-closed bins, see the module docstring)."""
    edges = bin_edges(bins)
    conf = as_confidences(confidences)
    ok = as_correct(correct, len(conf))
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, len(edges) - 2)
    count = np.bincount(idx, minlength=len(edges) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=len(edges) - 1) / count
        mean_acc = np.bincount(idx, weights=ok.astype(np.float64), minlength=len(edges) - 1) / count
    return ReliabilityDiagram(edges=edges, confidence=mean_conf, accuracy=mean_acc, count=count)


def ece(confidences: Any, correct: Any, bins: int = DEFAULT_BINS) -> float:
    """Expected calibration error of top-label confidences (``correct``: prediction was right)."""
    return reliability_diagram(confidences, correct, bins).ece


def ece_from_logits(logits: Any, labels: Any, bins: int = DEFAULT_BINS) -> float:
    z, y = _logits_labels(logits, labels)
    conf, pred = top_label(z)
    return ece(conf, pred == y, bins)


def _nll_at_inverse_temperature(z: np.ndarray, z_true: np.ndarray, beta: float) -> float:
    return float((logsumexp(beta * z, axis=1) - beta * z_true).mean())


def fit_temperature(logits: Any, labels: Any, bounds: tuple[float, float] = (1e-2, 1e2)) -> float:
    """Temperature ``T`` in ``bounds`` minimising the NLL of ``softmax(logits / T)`` on these samples.

    Returns 1.0 unless the fitted temperature gives a strictly lower NLL than ``T = 1``.
    """
    lo, hi = bounds
    if not (0 < lo <= 1 <= hi) or not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"bounds={bounds!r} is not allowed; allowed: 0 < low <= 1 <= high, finite")
    z, y = _logits_labels(logits, labels)
    z_true = z[np.arange(len(y)), y]
    u = minimize_scalar(lambda u: _nll_at_inverse_temperature(z, z_true, math.exp(u)),
                        bounds=(-math.log(hi), -math.log(lo)), method="bounded", options={"xatol": 1e-5}).x
    temperature = math.exp(-u)
    # compared exactly as the scaled NLL is reported, nll(z / T), so rounding cannot make it exceed nll(z)
    if _mean_nll(z / temperature, y) < _mean_nll(z, y):
        return temperature
    return 1.0


# The label relaxation paper's temperatures: 0.25, 0.5, 0.75, then 1.0 to 2.0 by 0.1, 2.5 and 3.0
TEMPERATURE_GRID = (0.25, 0.5, 0.75, *(round(1.0 + 0.1 * i, 1) for i in range(11)), 2.5, 3.0)


def temperature_by_ece(logits: Any, labels: Any, grid: tuple[float, ...] = TEMPERATURE_GRID,
                       bins: int = DEFAULT_BINS) -> float:
    """The temperature of ``grid`` whose scaled softmax has the lowest ECE on these samples (the first on ties)."""
    if not grid or any(not (isinstance(t, (int, float)) and 0 < t < math.inf) for t in grid):
        raise ValueError(f"grid={grid!r} is not allowed; allowed: one or more finite temperatures > 0")
    z, y = _logits_labels(logits, labels)
    errors = [ece_from_logits(z / t, y, bins) for t in grid]
    return float(grid[int(np.argmin(errors))])

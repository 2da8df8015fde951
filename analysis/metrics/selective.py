"""Selective classification: risk-coverage curve, AURC, E-AURC, coverage at risk, risk at coverage, AUROC.

Inputs are a confidence score per sample (higher = more confident; any registered score, see
:mod:`analysis.metrics.scores`) and whether the prediction was correct.

Curve. Samples are sorted by descending score; accepting the first ``i`` gives coverage ``i/N`` and
selective risk ``r_i = (errors among the first i) / i``, for ``i = 1..N``.

Ties (``ties=``):

- ``"average"`` (default): the expected curve over all orders of tied samples, equally likely. Within a
  group of ``g`` tied samples holding ``e`` errors, the cumulative error count grows by ``e/g`` per
  accepted sample. Since AURC is linear in the risks, this AURC equals the mean AURC over tie orders. The
  result does not depend on the input order, which matters when many scores are equal (e.g. float32 MSPs
  saturated at 1.0).
- ``"stable"``: tied samples keep their input order (a stable descending sort).

AURC discretisation (``method=``):

- ``"trapezoid"`` (default, used in the report): the trapezoid rule over the points ``(i/N, r_i)`` with
  ``(0, 0)`` prepended, as in Xia et al. and Cattelan & Silva: ``(sum_i r_i - r_N / 2) / N``. A single
  sample gives half its risk.
- ``"tu"`` (torch-uncertainty): the trapezoid rule over ``(i/N, r_i)``, ``i = 1..N``, without the origin,
  divided by its width ``1 - 1/N``: ``(sum_i r_i - (r_1 + r_N) / 2) / (N - 1)``; NaN for ``N = 1``.

E-AURC = AURC - AURC of the perfect ranking of the same errors (all correct samples first), same
discretisation and tie rule; it is >= 0. Coverage at risk ``r``: the largest ``i/N`` with ``r_i <= r``, NaN
when no coverage reaches it. Risk at coverage ``c``: ``r_k`` with ``k = ceil(c N)`` the smallest number of
accepted samples giving coverage >= ``c``. AUROC: misclassification detection with correct = positive and
the score as the decision value, ties counted one half (as scikit-learn's ``roc_auc_score``); NaN when all
predictions are correct or all are wrong. Everything is O(N log N) (one sort).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata

from analysis.metrics._inputs import as_correct, as_scores, check_choice, check_fraction

TIES = ("average", "stable")
AURC_METHODS = ("trapezoid", "tu")
DEFAULT_RISK = 0.05
RISK_KEY = "cov_at_5"  # the metric of coverage at DEFAULT_RISK


@dataclass(frozen=True)
class RiskCoverage:
    """Points ``(i/N, r_i)``, ``i = 1..N``, in order of increasing coverage (the origin is not included)."""

    coverage: np.ndarray
    risk: np.ndarray
    cum_errors: np.ndarray  # expected number of errors among the first i accepted (float64)

    @property
    def n(self) -> int:
        return len(self.coverage)


def _inputs(scores: Any, correct: Any) -> tuple[np.ndarray, np.ndarray]:
    s = as_scores(scores, "scores")
    ok = as_correct(correct, len(s))
    return s, ok


def _cumulative_errors(s: np.ndarray, ok: np.ndarray, ties: str) -> tuple[np.ndarray, np.ndarray | float]:
    """Expected errors among the first i accepted, as an exact (numerator, denominator) pair of integers
    held in float64 (exact below 2**53, i.e. N up to ~9e7), so the risk is one correctly rounded division:
    a risk that equals e.g. 1/10 exactly compares equal to the float 0.1."""
    check_choice(ties, "ties", TIES)
    # averaging makes the order inside a tie group irrelevant, so the faster unstable sort will do
    order = np.argsort(-s, kind="stable" if ties == "stable" else "quicksort")
    cum = np.cumsum(~ok[order], dtype=np.float64)
    if ties == "stable":
        return cum, 1.0
    sorted_s = s[order]
    ends = np.flatnonzero(sorted_s[1:] != sorted_s[:-1])
    if len(ends) == len(s) - 1:  # no ties
        return cum, 1.0
    ends = np.append(ends, len(s) - 1)
    starts = np.concatenate(([0], ends[:-1] + 1))
    sizes = (ends - starts + 1).astype(np.float64)
    before = np.where(starts > 0, cum[starts - 1], 0.0)
    group = np.repeat(np.arange(len(ends)), ends - starts + 1)
    position = np.arange(len(s)) - starts[group] + 1
    # before + position * errors / size, over the common denominator size
    numerator = (before * sizes)[group] + position * (cum[ends] - before)[group]
    return numerator, sizes[group]


def risk_coverage_curve(scores: Any, correct: Any, ties: str = "average") -> RiskCoverage:
    s, ok = _inputs(scores, correct)
    numerator, denominator = _cumulative_errors(s, ok, ties)
    accepted = np.arange(1, len(s) + 1, dtype=np.float64)
    return RiskCoverage(
        coverage=accepted / len(s),
        risk=numerator / (denominator * accepted),
        cum_errors=numerator / denominator,
    )


def _area(risk: np.ndarray, method: str) -> float:
    check_choice(method, "method", AURC_METHODS)
    n = len(risk)
    if method == "trapezoid":
        return float((risk.sum() - risk[-1] / 2.0) / n)
    if n < 2:
        return math.nan
    return float((risk.sum() - (risk[0] + risk[-1]) / 2.0) / (n - 1))


def _excess_risk(curve: RiskCoverage) -> np.ndarray:
    """Per-coverage risk above the perfect ranking's; clipped at 0 against rounding (it is >= 0 exactly)."""
    n = curve.n
    n_errors = round(float(curve.cum_errors[-1]))
    accepted = np.arange(1, n + 1, dtype=np.float64)
    best = np.maximum(accepted - (n - n_errors), 0.0)
    return np.maximum(curve.cum_errors - best, 0.0) / accepted


def _coverage_at(curve: RiskCoverage, risk: float) -> float:
    within = np.flatnonzero(curve.risk <= risk)
    return float(curve.coverage[within[-1]]) if len(within) else math.nan


def aurc(scores: Any, correct: Any, method: str = "trapezoid", ties: str = "average") -> float:
    return _area(risk_coverage_curve(scores, correct, ties).risk, method)


def eaurc(scores: Any, correct: Any, method: str = "trapezoid", ties: str = "average") -> float:
    curve = risk_coverage_curve(scores, correct, ties)
    check_choice(method, "method", AURC_METHODS)
    return _area(_excess_risk(curve), method)


def coverage_at_risk(scores: Any, correct: Any, risk: float = DEFAULT_RISK, ties: str = "average") -> float:
    risk = check_fraction(risk, "risk")
    return _coverage_at(risk_coverage_curve(scores, correct, ties), risk)


def risk_at_coverage(scores: Any, correct: Any, coverage: float, ties: str = "average") -> float:
    coverage = check_fraction(coverage, "coverage")
    curve = risk_coverage_curve(scores, correct, ties)
    # the relative slack keeps e.g. 0.3 * 10 = 3.0000000000000004 from accepting a 4th sample
    k = min(max(math.ceil(coverage * curve.n * (1 - 1e-12)), 1), curve.n)
    return float(curve.risk[k - 1])


def misclassification_auroc(scores: Any, correct: Any) -> float:
    """P(score of a random correct prediction > that of a random wrong one), ties counted 1/2."""
    s, ok = _inputs(scores, correct)
    n_pos = int(ok.sum())
    n_neg = len(ok) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(s)
    return float((ranks[ok].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def selective_summary(
    scores: Any,
    correct: Any,
    risk: float = DEFAULT_RISK,
    method: str = "trapezoid",
    ties: str = "average",
) -> dict[str, float]:
    """``aurc``, ``eaurc`` and ``cov_at_risk`` from a single sort (what the per-trial evaluation uses)."""
    risk = check_fraction(risk, "risk")
    check_choice(method, "method", AURC_METHODS)
    curve = risk_coverage_curve(scores, correct, ties)
    return {
        "aurc": _area(curve.risk, method),
        "eaurc": _area(_excess_risk(curve), method),
        "cov_at_risk": _coverage_at(curve, risk),
    }

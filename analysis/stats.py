"""Statistics of the comparison report: confidence intervals over seeds, paired tests, a paired bootstrap
over test samples, and Pareto fronts.

- ``mean_ci``: mean and the two-sided Student-t interval ``mean ± t_{1-a/2, n-1} · s / sqrt(n)`` (sample
  standard deviation ``s``, ``n - 1`` degrees of freedom); the half-width is NaN for ``n < 2``.
- ``paired_test``: the paired t-test on the per-seed differences (``scipy.stats.ttest_rel``) for ``n >= 2``
  pairs, or the Wilcoxon signed-rank test (exact for small ``n``); identical pairs give p = 1.
- ``welch_test``: Welch's unpaired t-test (``scipy.stats.ttest_ind(equal_var=False)``), for two methods
  whose seeds differ, so that no seed pairs them; ``welch_from_summary`` the same test from each side's mean,
  standard deviation and size alone (a published "mean ± SD over n seeds" against ours).
- ``bootstrap_indices``, ``bootstrap_p_value``: the paired bootstrap for one seed per method (the leaderboard
  resamples the test samples with replacement, the same indices for both models, so the comparison stays
  paired); the two-sided p-value is ``min(1, 2 · (min(#{d* <= 0}, #{d* >= 0}) + 1) / (B + 1))`` for the
  resampled differences ``d*``.
- ``best_set``: the methods a column cannot tell from its best mean: the best, and every method whose paired
  t-test over the seeds it shares with the best gives ``p >= alpha`` (fewer than 2 shared seeds: no test, the
  method stays in the set, as "not shown to differ").
- ``pareto_mask``: the points no other point dominates (at least as good in every objective, strictly
  better in one); NaN rows are never on the front.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

ALPHA = 0.05  # the significance level of every test the tool reports (a difference, a verdict, a tie)
PAIRED_TESTS = ("t-test", "wilcoxon")
DEFAULT_BOOTSTRAP = 1000


@dataclass(frozen=True)
class Interval:
    mean: float
    half_width: float  # NaN when n < 2
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> Interval:
    """Mean and Student-t confidence interval of the finite values (NaNs are dropped)."""
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} is not allowed; allowed: a float in (0, 1)")
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, 0)
    if n == 1:
        return Interval(float(x[0]), math.nan, 1)
    sem = float(x.std(ddof=1)) / math.sqrt(n)
    return Interval(float(x.mean()), float(sps.t.ppf(0.5 + level / 2, n - 1)) * sem, n)


@dataclass(frozen=True)
class Comparison:
    """``method`` minus ``baseline``: the mean difference, the p-value and the test that gave it."""

    diff: float
    p_value: float
    test: str
    n: int  # pairs (seeds) or bootstrap resamples


def paired_test(a: Sequence[float], b: Sequence[float], test: str = "t-test") -> Comparison:
    """Two-sided paired test of ``a`` against ``b`` (same seeds, same order); pairs with a NaN are dropped."""
    if test not in PAIRED_TESTS:
        raise ValueError(f"test={test!r} is not allowed; allowed: {', '.join(PAIRED_TESTS)}")
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"a and b must be 1-D of equal length; got shapes {x.shape} and {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = len(x)
    if n < 2:
        return Comparison(float(np.mean(x - y)) if n else math.nan, math.nan, test, n)
    d = x - y
    if np.allclose(d, 0.0, rtol=0.0, atol=1e-15):
        return Comparison(0.0, 1.0, test, n)
    if test == "t-test":
        if np.allclose(d, d[0], rtol=0.0, atol=1e-15):  # a constant non-zero shift: no variance, certain
            return Comparison(float(d.mean()), 0.0, test, n)
        p = float(sps.ttest_rel(x, y).pvalue)
    else:
        p = float(sps.wilcoxon(x, y).pvalue)
    return Comparison(float(d.mean()), p, test, n)


WELCH = "Welch t-test"


def welch_test(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Two-sided Welch t-test of mean(``a``) against mean(``b``); NaNs dropped, ``n`` = the smaller sample."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    n = min(len(x), len(y))
    if n == 0:
        return Comparison(math.nan, math.nan, WELCH, 0)
    diff = float(x.mean() - y.mean())
    if n < 2:
        return Comparison(diff, math.nan, WELCH, n)
    if np.ptp(x) == 0 and np.ptp(y) == 0:  # no variance on either side: the difference is certain
        return Comparison(diff, 1.0 if diff == 0 else 0.0, WELCH, n)
    return Comparison(diff, float(sps.ttest_ind(x, y, equal_var=False).pvalue), WELCH, n)


def welch_interval(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Interval:
    """mean(``a``) − mean(``b``) and its Welch–Satterthwaite t-interval (NaN half-width when a side has fewer
    than 2 values); ``n`` = the smaller sample."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    n = min(len(x), len(y))
    if n == 0:
        return Interval(math.nan, math.nan, 0)
    diff = float(x.mean() - y.mean())
    if n < 2:
        return Interval(diff, math.nan, n)
    va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    if va + vb == 0:
        return Interval(diff, 0.0, n)
    df = (va + vb) ** 2 / (va**2 / (len(x) - 1) + vb**2 / (len(y) - 1))
    return Interval(diff, float(sps.t.ppf(0.5 + level / 2, df)) * math.sqrt(va + vb), n)


def welch_from_summary(mean_a: float, sd_a: float, n_a: int, mean_b: float, sd_b: float, n_b: int) -> Comparison:
    """Two-sided Welch t-test of two samples known by mean, sample standard deviation and size: ``a`` minus
    ``b``, ``n`` = the smaller size; p is NaN when a side has fewer than 2 values or an unknown spread."""
    diff = float(mean_a - mean_b)
    n = min(int(n_a), int(n_b))
    if n < 2 or not all(math.isfinite(v) for v in (mean_a, sd_a, mean_b, sd_b)):
        return Comparison(diff, math.nan, WELCH, n)
    if sd_a < 0 or sd_b < 0:
        raise ValueError(f"standard deviations {sd_a!r}, {sd_b!r} are not allowed; allowed: numbers >= 0")
    if sd_a == 0 and sd_b == 0:
        return Comparison(diff, 1.0 if diff == 0 else 0.0, WELCH, n)
    p = sps.ttest_ind_from_stats(mean_a, sd_a, n_a, mean_b, sd_b, n_b, equal_var=False).pvalue
    return Comparison(diff, float(p), WELCH, n)
@dataclass(frozen=True)
class BestSet:
    """Of a column of per-seed values: the method with the best mean, the methods indistinguishable from it
    (the best included, best mean first) and each other method's test against the best."""

    best: str | None
    tied: tuple[str, ...]
    tests: dict[str, Comparison]  # method -> method minus best, over their shared seeds

    def decided(self, methods: int) -> bool:
        """Whether the test separates anything: some method of the ``methods`` compared is out of the set."""
        return self.best is not None and len(self.tied) < methods


def best_set(values: dict[str, dict[object, float]], mode: str, alpha: float = ALPHA) -> BestSet:
    """``values``: method -> {seed: value}. The best mean (NaNs dropped) and the methods the paired t-test over
    shared seeds does not tell from it at level ``alpha``."""
    if mode not in ("max", "min"):
        raise ValueError(f"mode={mode!r} is not allowed; allowed: max, min")
    means = {m: float(np.mean(f)) for m, v in values.items()
             if len(f := [x for x in v.values() if math.isfinite(x)])}
    if not means:
        return BestSet(None, (), {})
    order = sorted(means, key=lambda m: means[m], reverse=(mode == "max"))
    best = order[0]
    tests, tied = {}, [best]
    for m in order[1:]:
        shared = sorted(set(values[m]) & set(values[best]), key=str)
        c = paired_test([values[m][s] for s in shared], [values[best][s] for s in shared])
        tests[m] = c
        if not (math.isfinite(c.p_value) and c.p_value < alpha):
            tied.append(m)
    return BestSet(best, tuple(tied), tests)


def bootstrap_indices(n: int, resamples: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> np.ndarray:
    """``(resamples, n)`` indices drawn with replacement; share them across models to keep tests paired."""
    if n < 1:
        raise ValueError(f"n={n} is not allowed; allowed: an integer >= 1")
    if resamples < 1:
        raise ValueError(f"resamples={resamples} is not allowed; allowed: an integer >= 1")
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap_p_value(observed: float, resampled: np.ndarray) -> float:
    """Two-sided p-value of a zero difference given resampled differences (percentile bootstrap)."""
    d = np.asarray(resampled, dtype=np.float64)
    d = d[np.isfinite(d)]
    if len(d) == 0 or not math.isfinite(observed):
        return math.nan
    if np.all(d == 0.0):
        return 1.0
    tail = min(int((d <= 0).sum()), int((d >= 0).sum()))
    return float(min(1.0, 2.0 * (tail + 1) / (len(d) + 1)))


def pareto_mask(points: np.ndarray | Sequence[Sequence[float]], modes: Sequence[str]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``points`` (N, M); ``modes[j]`` is "max" or "min"."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != len(modes):
        raise ValueError(f"points has shape {p.shape}; expected (N, {len(modes)}) to match modes")
    for m in modes:
        if m not in ("max", "min"):
            raise ValueError(f"modes contains {m!r}; allowed: max, min")
    signs = np.array([-1.0 if m == "max" else 1.0 for m in modes])
    q = p * signs  # everything minimised
    finite = np.all(np.isfinite(q), axis=1)
    mask = finite.copy()
    for i in np.flatnonzero(finite):
        others = q[finite]
        dominated = np.all(others <= q[i], axis=1) & np.any(others < q[i], axis=1)
        mask[i] = not dominated.any()
    return mask

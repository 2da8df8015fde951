import math

import numpy as np
import pytest
from scipy import stats as sps

from analysis.stats import (
    bootstrap_indices,
    bootstrap_p_value,
    mean_ci,
    paired_test,
    pareto_mask,
    welch_test,
)


def test_mean_ci_by_hand():
    # mean 0.852; deviations -2, 8, -12, -2, 8 (×1e-3) -> s² = 280e-6 / 4; t(0.975, 4) = 2.776445
    iv = mean_ci([0.85, 0.86, 0.84, 0.85, 0.86])
    assert iv.n == 5
    assert iv.mean == pytest.approx(0.852)
    assert iv.half_width == pytest.approx(2.776445 * math.sqrt(70e-6) / math.sqrt(5), rel=1e-5)
    assert iv.low < iv.mean < iv.high


def test_mean_ci_small_and_nan():
    assert math.isnan(mean_ci([0.5]).half_width) and mean_ci([0.5]).mean == 0.5
    assert mean_ci([]).n == 0 and math.isnan(mean_ci([]).mean)
    assert mean_ci([1.0, float("nan"), 3.0]).mean == 2.0  # NaN dropped
    # two values: t(0.975, 1) = 12.7062; s = sqrt(2); sem = 1
    assert mean_ci([1.0, 3.0]).half_width == pytest.approx(12.7062, rel=1e-4)
    with pytest.raises(ValueError, match="level"):
        mean_ci([1, 2], level=1.5)


def test_paired_t_test_by_hand():
    # d = 1, 2, 3: t = 2 / (1/sqrt 3) = 2 sqrt 3, df 2; P(T > t) = (1 - t / sqrt(t² + 2)) / 2
    t = 2 * math.sqrt(3)
    expected = 1 - t / math.sqrt(t * t + 2)
    c = paired_test([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    assert c.diff == pytest.approx(2.0)
    assert c.p_value == pytest.approx(expected, rel=1e-6)
    assert c.test == "t-test" and c.n == 3


def test_paired_wilcoxon_exact_by_hand():
    # three positive differences: the exact two-sided p-value is 2 · (1/2)³ = 0.25
    c = paired_test([2.0, 4.0, 6.0], [1.0, 2.0, 3.5], test="wilcoxon")
    assert c.p_value == pytest.approx(0.25)


def test_paired_test_edge_cases():
    assert paired_test([1.0, 2.0], [1.0, 2.0]).p_value == 1.0
    assert paired_test([2.0, 3.0], [1.0, 2.0]).p_value == 0.0  # a constant shift, no variance
    single = paired_test([2.0], [1.0])
    assert single.diff == 1.0 and math.isnan(single.p_value)
    assert paired_test([1.0, float("nan"), 3.0], [0.0, 5.0, 1.0]).n == 2
    with pytest.raises(ValueError, match="test="):
        paired_test([1, 2], [1, 2], test="anova")
    with pytest.raises(ValueError, match="equal length"):
        paired_test([1, 2], [1, 2, 3])


def test_bootstrap_p_value_by_hand():
    # one of four resampled differences is <= 0, three are >= 0: p = 2 (1 + 1) / (4 + 1)
    assert bootstrap_p_value(1.0, np.array([-1.0, 1.0, 2.0, 3.0])) == pytest.approx(0.8)
    assert bootstrap_p_value(0.0, np.zeros(10)) == 1.0
    assert bootstrap_p_value(1.0, np.ones(999)) == pytest.approx(2 / 1000)


def test_bootstrap_indices_shape_and_reproducible():
    a = bootstrap_indices(7, 5, seed=3)
    assert a.shape == (5, 7) and a.min() >= 0 and a.max() < 7
    assert np.array_equal(a, bootstrap_indices(7, 5, seed=3))
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_indices(3, 0)


def test_pareto_mask_planted():
    points = [
        [0.90, 0.10],  # front
        [0.80, 0.05],  # front: lower second objective
        [0.85, 0.20],  # dominated by the first
        [0.90, 0.10],  # equal to the first: neither dominates, both on the front
        [float("nan"), 0.0],  # never on the front
        [0.70, 0.05],  # dominated by the second (equal AURC, lower accuracy)
    ]
    mask = pareto_mask(points, ["max", "min"])
    assert mask.tolist() == [True, True, False, True, False, False]
    with pytest.raises(ValueError, match="modes"):
        pareto_mask(points, ["max", "down"])
    with pytest.raises(ValueError, match="shape"):
        pareto_mask(points, ["max"])


def test_welch_test_by_hand():
    # means 2 and 1, variances 1 and 1 (n = 3 each): t = 1 / sqrt(2/3), df = 4
    c = welch_test([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    assert c.diff == pytest.approx(1.0) and c.test == "Welch t-test" and c.n == 3
    assert c.p_value == pytest.approx(2 * sps.t.sf(1 / math.sqrt(2 / 3), 4), rel=1e-9)
    assert welch_test([1.0, 1.0], [1.0, 1.0]).p_value == 1.0
    assert welch_test([2.0, 2.0], [1.0, 1.0]).p_value == 0.0
    assert math.isnan(welch_test([2.0], [1.0, 1.5]).p_value)
    assert welch_test([1.0, float("nan"), 3.0], [0.0, 1.0]).diff == pytest.approx(1.5)


def test_interval_half_width_has_the_means_decimals():
    from analysis.formatting import fmt_interval
    from analysis.stats import Interval

    assert fmt_interval(Interval(mean=0.02981, half_width=0.0003679, n=3)) == "0.0298 ± 0.0004"
    assert fmt_interval(Interval(mean=0.8553, half_width=0.0009405, n=3)) == "0.8553 ± 0.0009"
    assert fmt_interval(Interval(mean=0.8553, half_width=0.0, n=1)) == "0.8553"


def test_welch_from_summary_by_hand():
    from scipy.stats import t as student

    from analysis.stats import welch_from_summary

    # ours 0.894 ± 0.002 over 5 seeds against the paper's 0.912 ± 0.003 over 10
    va, vb = 0.002**2 / 5, 0.003**2 / 10
    t = (0.894 - 0.912) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 4 + vb**2 / 9)
    test = welch_from_summary(0.894, 0.002, 5, 0.912, 0.003, 10)
    assert math.isclose(test.p_value, 2 * student.sf(abs(t), df), rel_tol=1e-9)
    assert math.isclose(test.diff, -0.018) and test.n == 5
    assert math.isnan(welch_from_summary(0.9, math.nan, 1, 0.91, 0.003, 10).p_value)  # one seed: no test
    assert welch_from_summary(0.9, 0.0, 3, 0.9, 0.0, 3).p_value == 1.0
    assert welch_from_summary(0.9, 0.0, 3, 0.8, 0.0, 3).p_value == 0.0


def test_welch_interval_by_hand():
    from scipy.stats import t as student

    from analysis.stats import welch_interval

    a, b = [0.90, 0.91, 0.92], [0.88, 0.89, 0.89, 0.90]
    va, vb = np.var(a, ddof=1) / 3, np.var(b, ddof=1) / 4
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 3)
    out = welch_interval(a, b)
    assert math.isclose(out.mean, np.mean(a) - np.mean(b))
    assert math.isclose(out.half_width, student.ppf(0.975, df) * math.sqrt(va + vb), rel_tol=1e-9)
    assert math.isnan(welch_interval([0.9], b).half_width)

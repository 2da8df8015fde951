import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from analysis.metrics.selective import (
    aurc,
    coverage_at_risk,
    eaurc,
    misclassification_auroc,
    risk_at_coverage,
    risk_coverage_curve,
    selective_summary,
)

# running example: sorted errors [0, 1, 0, 1] -> risks [0, 1/2, 1/3, 1/2]
SCORES = [0.9, 0.8, 0.7, 0.6]
CORRECT = [True, False, True, False]


def test_curve_hand_computed():
    curve = risk_coverage_curve(SCORES, CORRECT)
    np.testing.assert_allclose(curve.coverage, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(curve.risk, [0.0, 1 / 2, 1 / 3, 1 / 2])


def test_curve_sorts_by_descending_score():
    # same samples, shuffled input order
    curve = risk_coverage_curve([0.6, 0.9, 0.7, 0.8], [False, True, True, False])
    np.testing.assert_allclose(curve.risk, [0.0, 1 / 2, 1 / 3, 1 / 2])


def test_aurc_trapezoid_and_tu_hand_computed():
    # trapezoid with (0, 0): (sum r - r_N / 2) / N = (4/3 - 1/4) / 4
    assert aurc(SCORES, CORRECT) == pytest.approx(13 / 48)
    # torch-uncertainty: (sum r - (r_1 + r_N) / 2) / (N - 1) = (4/3 - 1/4) / 3
    assert aurc(SCORES, CORRECT, method="tu") == pytest.approx(13 / 36)


def test_eaurc_hand_computed():
    # perfect ranking: errors [0, 0, 1, 1] -> risks [0, 0, 1/3, 1/2]; trapezoid AURC 7/48, tu 7/36
    assert eaurc(SCORES, CORRECT) == pytest.approx(13 / 48 - 7 / 48)
    assert eaurc(SCORES, CORRECT, method="tu") == pytest.approx(13 / 36 - 7 / 36)


def test_eaurc_zero_for_perfect_ranking():
    assert eaurc([0.9, 0.8, 0.2, 0.1], [True, True, False, False]) == 0.0


def test_coverage_at_risk_picks_largest_coverage_not_first_crossing():
    # risks [0, 1/2, 1/3, 1/2] are not monotone: the answer must be the largest qualifying coverage
    assert coverage_at_risk(SCORES, CORRECT, risk=0.05) == 0.25
    assert coverage_at_risk(SCORES, CORRECT, risk=0.4) == 0.75
    assert coverage_at_risk(SCORES, CORRECT, risk=0.5) == 1.0


def test_coverage_at_risk_exact_equality_counts():
    # 1 error in the first 20 -> risk exactly 0.05 at coverage 20/21
    scores = np.arange(21, 0, -1, dtype=float)
    correct = np.ones(21, dtype=bool)
    correct[[5, 20]] = False
    assert coverage_at_risk(scores, correct, risk=0.05) == pytest.approx(20 / 21)


def test_coverage_at_risk_nan_when_unreachable():
    assert math.isnan(coverage_at_risk([0.9, 0.1], [False, True], risk=0.05))


def test_risk_at_coverage_hand_computed():
    assert risk_at_coverage(SCORES, CORRECT, 0.25) == 0.0
    assert risk_at_coverage(SCORES, CORRECT, 0.5) == 0.5
    assert risk_at_coverage(SCORES, CORRECT, 0.3) == 0.5  # ceil(0.3 * 4) = 2 accepted
    assert risk_at_coverage(SCORES, CORRECT, 0.75) == pytest.approx(1 / 3)
    assert risk_at_coverage(SCORES, CORRECT, 1.0) == 0.5


def test_risk_at_coverage_no_float_overshoot():
    # 0.3 * 10 = 3.0000000000000004 must accept 3 samples, not 4
    correct = [True, True, True, False, False, False, False, False, False, False]
    assert risk_at_coverage(np.arange(10, 0, -1), correct, 0.3) == 0.0


def test_auroc_hand_computed():
    # positives (correct) {0.9, 0.7} vs negatives {0.8, 0.6}: 3 of 4 pairs ordered
    assert misclassification_auroc(SCORES, CORRECT) == pytest.approx(0.75)


def test_auroc_ties_count_half():
    assert misclassification_auroc([0.5, 0.5], [True, False]) == 0.5


def test_auroc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 20, size=500).astype(float)  # many ties
    correct = rng.random(500) < 0.7
    assert misclassification_auroc(scores, correct) == pytest.approx(
        roc_auc_score(correct, scores), abs=1e-12
    )


# ---- ties ----
TIE_SCORES = [0.9, 0.5, 0.5, 0.1]


def test_ties_stable_keeps_input_order():
    a = risk_coverage_curve(TIE_SCORES, [True, True, False, False], ties="stable")
    b = risk_coverage_curve(TIE_SCORES, [True, False, True, False], ties="stable")
    np.testing.assert_allclose(a.risk, [0, 0, 1 / 3, 1 / 2])
    np.testing.assert_allclose(b.risk, [0, 1 / 2, 1 / 3, 1 / 2])


def test_ties_average_is_mean_over_orders():
    # the tied pair holds one error: expected cumulative errors [0, 0.5, 1, 2]
    for correct in ([True, True, False, False], [True, False, True, False]):
        curve = risk_coverage_curve(TIE_SCORES, correct, ties="average")
        np.testing.assert_allclose(curve.risk, [0, 0.25, 1 / 3, 1 / 2])
    stable_mean = (
        aurc(TIE_SCORES, [True, True, False, False], ties="stable")
        + aurc(TIE_SCORES, [True, False, True, False], ties="stable")
    ) / 2
    assert aurc(TIE_SCORES, [True, False, True, False]) == pytest.approx(stable_mean)
    assert aurc(TIE_SCORES, [True, False, True, False]) == pytest.approx(5 / 24)


def test_average_ties_independent_of_input_order():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 5, 200).astype(float)
    correct = rng.random(200) < 0.2 + scores / 5
    perm = rng.permutation(200)
    assert aurc(scores, correct) == pytest.approx(aurc(scores[perm], correct[perm]), abs=1e-12)
    cov = coverage_at_risk(scores, correct, 0.3)
    assert not math.isnan(cov)
    assert cov == coverage_at_risk(scores[perm], correct[perm], 0.3)


def test_all_tied_scores_give_constant_risk():
    curve = risk_coverage_curve(np.zeros(4), [True, False, True, True])
    np.testing.assert_allclose(curve.risk, np.full(4, 0.25))


def test_eaurc_with_ties_hand_computed():
    # averaged risks [0, 1/4, 1/3, 1/2] -> AURC 5/24; perfect ranking [0, 0, 1/3, 1/2] -> 7/48
    assert eaurc(TIE_SCORES, [True, False, True, False]) == pytest.approx(5 / 24 - 7 / 48)


def test_risk_at_coverage_with_ties_averages():
    assert risk_at_coverage(TIE_SCORES, [True, False, True, False], 0.5) == 0.25
    assert risk_at_coverage(TIE_SCORES, [True, False, True, False], 0.5, ties="stable") == 0.5


def test_coverage_at_risk_tied_risk_exactly_on_threshold():
    # three singletons (correct), then five tied samples holding four errors: 0.8 expected errors each;
    # at 6 accepted the risk is 2.4 / 6 = 0.4 exactly, which must count as <= 0.4 (no rounding above it)
    scores = [5.0, 1.0, 2.0, 1.0, 1.0, 4.0, 1.0, 1.0]
    correct = [True, False, True, False, False, True, False, True]
    curve = risk_coverage_curve(scores, correct)
    assert curve.risk[5] == 0.4
    assert coverage_at_risk(scores, correct, risk=0.4) == 0.75
    assert selective_summary(scores, correct, risk=0.4)["cov_at_risk"] == 0.75


# ---- degenerate sets ----
def test_all_correct():
    scores, correct = [0.3, 0.2, 0.9], [True, True, True]
    assert aurc(scores, correct) == 0.0
    assert aurc(scores, correct, method="tu") == 0.0
    assert eaurc(scores, correct) == 0.0
    assert coverage_at_risk(scores, correct) == 1.0
    assert math.isnan(misclassification_auroc(scores, correct))


def test_all_wrong():
    scores, correct = [0.3, 0.2, 0.9, 0.5], [False] * 4
    assert aurc(scores, correct) == pytest.approx(3.5 / 4)
    assert aurc(scores, correct, method="tu") == pytest.approx(1.0)
    assert eaurc(scores, correct) == 0.0
    assert math.isnan(coverage_at_risk(scores, correct, risk=0.99))
    assert risk_at_coverage(scores, correct, 0.5) == 1.0
    assert math.isnan(misclassification_auroc(scores, correct))


def test_single_sample():
    assert aurc([0.7], [True]) == 0.0
    assert aurc([0.7], [False]) == 0.5  # trapezoid from (0, 0) to (1, 1)
    assert math.isnan(aurc([0.7], [False], method="tu"))
    assert eaurc([0.7], [False]) == 0.0
    assert math.isnan(eaurc([0.7], [True], method="tu"))
    assert math.isnan(misclassification_auroc([0.7], [True]))
    assert coverage_at_risk([0.7], [True]) == 1.0
    assert math.isnan(coverage_at_risk([0.7], [False]))
    assert risk_at_coverage([0.7], [False], 0.01) == 1.0


def test_summary_matches_single_metrics():
    rng = np.random.default_rng(2)
    scores = rng.random(300)
    correct = rng.random(300) < scores
    summary = selective_summary(scores, correct, risk=0.1)
    assert summary["aurc"] == aurc(scores, correct)
    assert summary["eaurc"] == eaurc(scores, correct)
    assert summary["cov_at_risk"] == coverage_at_risk(scores, correct, 0.1)


def test_accepts_torch_tensors():
    assert aurc(torch.tensor(SCORES), torch.tensor(CORRECT)) == pytest.approx(13 / 48)


def test_better_score_gives_lower_aurc():
    rng = np.random.default_rng(3)
    correct = rng.random(1000) < 0.8
    informative = correct + rng.normal(0, 0.5, 1000)
    random = rng.normal(0, 1, 1000)
    assert aurc(informative, correct) < aurc(random, correct)
    assert misclassification_auroc(informative, correct) > 0.8


# ---- bad input ----
@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: aurc([0.1, 0.2], [True]), "correct"),
        (lambda: aurc([], []), "scores"),
        (lambda: aurc([0.1, float("nan")], [True, False]), "scores"),
        (lambda: aurc([0.1, float("inf")], [True, False]), "scores"),
        (lambda: aurc([[0.1, 0.2]], [True]), "scores"),
        (lambda: aurc([0.1, 0.2], [2, 0]), "correct"),
        (lambda: aurc([0.1, 0.2], [True, False], method="simpson"), "method"),
        (lambda: aurc([0.1, 0.2], [True, False], ties="random"), "ties"),
        (lambda: coverage_at_risk([0.1], [True], risk=0.0), "risk"),
        (lambda: coverage_at_risk([0.1], [True], risk=1.5), "risk"),
        (lambda: coverage_at_risk([0.1], [True], risk=float("nan")), "risk"),
        (lambda: risk_at_coverage([0.1], [True], coverage=0.0), "coverage"),
        (lambda: risk_at_coverage([0.1], [True], coverage=-0.2), "coverage"),
        (lambda: risk_at_coverage([0.1], [True], coverage=1.01), "coverage"),
        (lambda: misclassification_auroc([0.1, 0.2, 0.3], [True, False]), "correct"),
        (lambda: selective_summary([0.1], [True], risk=2), "risk"),
    ],
)
def test_bad_input_names_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_the_risk_coverage_figure_zooms_past_the_spike_at_low_coverage(tmp_path):
    """A confident error ranked first makes the risk 1 at the lowest coverage; the axis ends just above the
    risk of the range shown (coverage >= MIN_COVERAGE), and a method's seeds draw one curve each."""
    from analysis.plots.report_plots import MIN_COVERAGE, RISK_MARGIN, plot_risk_coverage_methods, risk_top
    from tests.conftest import assert_png

    scores = np.linspace(1, 0, 100)
    correct = np.ones(100, dtype=bool)
    correct[[0, 50, 90]] = False  # the most confident is wrong
    curve = risk_coverage_curve(scores, correct)
    assert curve.risk[0] == 1.0
    shown = curve.coverage >= MIN_COVERAGE
    assert risk_top(curve.coverage, curve.risk) == pytest.approx(curve.risk[shown].max() * RISK_MARGIN)
    assert risk_top(curve.coverage, curve.risk) < 0.2
    seed = {"label": np.zeros(100, int), "pred": np.where(correct, 0, 1), "msp": scores, "lognorm": scores}
    assert_png(plot_risk_coverage_methods({"ls": [seed, seed], "ce": seed}, tmp_path / "rc.png"))

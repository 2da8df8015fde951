"""Property tests (hypothesis) for the selective-classification, logit-normalisation and scaling metrics."""

import math
from fractions import Fraction

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from analysis.metrics.calibration import fit_temperature, nll
from analysis.metrics.lognorm import select_lognorm_p
from analysis.metrics.selective import aurc, coverage_at_risk, eaurc, risk_coverage_curve

FAST = settings(max_examples=60, deadline=None, database=None)

# integer scores keep every transform below strictly increasing *in floating point* (no merged values)
samples = st.integers(1, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(-50, 50), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n),
    )
)
methods = st.sampled_from(["trapezoid", "tu"])
ties = st.sampled_from(["average", "stable"])
TRANSFORMS = {
    "affine": lambda s: 3.0 * s + 7.0,
    "cubic": lambda s: s**3 + s,
    "exp": lambda s: np.exp(s / 8.0),
    "sigmoid": lambda s: 1.0 / (1.0 + np.exp(-s / 20.0)),
}


def _same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


@FAST
@given(samples, methods, ties)
def test_perfect_ranking_minimises_aurc(sample, method, tie_rule):
    scores, correct = np.array(sample[0], float), np.array(sample[1])
    perfect = correct.astype(float)  # every correct sample ranked above every error
    a, best = aurc(scores, correct, method, tie_rule), aurc(perfect, correct, method, tie_rule)
    if len(scores) == 1 and method == "tu":
        assert math.isnan(a) and math.isnan(best)
    else:
        assert best <= a + 1e-12


@FAST
@given(samples, methods, ties, st.sampled_from(sorted(TRANSFORMS)), st.sampled_from([0.05, 0.2, 0.5, 1.0]))
def test_aurc_and_coverage_invariant_to_increasing_transforms(sample, method, tie_rule, transform, risk):
    scores, correct = np.array(sample[0], float), np.array(sample[1])
    moved = TRANSFORMS[transform](scores)
    assert _same(aurc(scores, correct, method, tie_rule), aurc(moved, correct, method, tie_rule))
    assert _same(
        coverage_at_risk(scores, correct, risk, tie_rule), coverage_at_risk(moved, correct, risk, tie_rule)
    )


float_samples = st.integers(1, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.floats(-100, 100, allow_nan=False), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n),
    )
)


@FAST
@given(float_samples, methods, ties, st.sampled_from(sorted(TRANSFORMS)), st.sampled_from([0.05, 0.2, 0.5]))
def test_invariance_for_float_scores(sample, method, tie_rule, transform, risk):
    scores, correct = np.array(sample[0], float), np.array(sample[1])
    moved = TRANSFORMS[transform](scores)
    # only where the transform stays strictly increasing in floating point (no values merged)
    assume(
        np.array_equal(np.sign(np.subtract.outer(scores, scores)), np.sign(np.subtract.outer(moved, moved)))
    )
    assert _same(aurc(scores, correct, method, tie_rule), aurc(moved, correct, method, tie_rule))
    assert _same(
        coverage_at_risk(scores, correct, risk, tie_rule), coverage_at_risk(moved, correct, risk, tie_rule)
    )


def _exact_average_risks(scores, correct):
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    risks, errors, i = [], 0, 0
    while i < len(order):
        group = [j for j in order[i:] if scores[j] == scores[order[i]]]
        wrong = sum(not correct[j] for j in group)
        for position in range(1, len(group) + 1):
            risks.append((errors + Fraction(position * wrong, len(group))) / (i + position))
        errors, i = errors + wrong, i + len(group)
    return risks


@FAST
@given(
    st.integers(1, 60).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(0, 4), min_size=n, max_size=n),
            st.lists(st.booleans(), min_size=n, max_size=n),
        )
    )
)
def test_average_tie_risks_are_correctly_rounded(sample):
    # so a risk that is exactly e.g. 2/5 compares equal to the float 0.4 in coverage at risk
    scores, correct = sample
    exact = _exact_average_risks(scores, correct)
    np.testing.assert_array_equal(risk_coverage_curve(scores, correct).risk, [float(r) for r in exact])
    for risk in ("0.05", "0.1", "0.2", "0.3", "0.4", "0.5"):
        within = [k + 1 for k, r in enumerate(exact) if r <= Fraction(risk)]
        expected = within[-1] / len(scores) if within else math.nan
        assert _same(coverage_at_risk(scores, correct, float(risk)), expected)


@FAST
@given(samples, methods, ties)
def test_eaurc_non_negative(sample, method, tie_rule):
    value = eaurc(np.array(sample[0], float), np.array(sample[1]), method, tie_rule)
    assert math.isnan(value) or value >= 0.0


@settings(max_examples=25, deadline=None, database=None)
@given(st.integers(0, 2**32 - 1), st.floats(-1e3, 1e3, allow_nan=False), st.integers(2, 8))
def test_lognorm_choice_unchanged_by_constant_shift(seed, shift, k):
    # dyadic logits and shift (multiples of 2^-20, |z| < 2^10): z + shift is exact, so the shifted logits are
    # exactly the shifted ones; otherwise the input itself would differ by rounding
    rng = np.random.default_rng(seed)
    n = 80
    z = rng.normal(size=(n, k)) * rng.uniform(0.5, 5, size=(n, 1))
    z = np.round(z * 2**20) / 2**20
    shift = round(shift * 2**20) / 2**20
    y = rng.integers(0, k, n)
    a, b = select_lognorm_p(z, y), select_lognorm_p(z + shift, y)
    assert a.grid_aurc == b.grid_aurc
    assert a.p == b.p


@settings(max_examples=40, deadline=None, database=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 60), st.integers(2, 6), st.floats(0.01, 30))
def test_temperature_scaling_never_raises_nll(seed, n, k, scale):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * scale
    y = rng.integers(0, k, n)
    t = fit_temperature(z, y)
    assert t > 0
    assert nll(z / t, y) <= nll(z, y)

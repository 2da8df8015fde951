import math

import numpy as np
import pytest
from scipy import optimize, special, stats

from analysis.metrics._numeric import average_ranks, log_softmax, logsumexp, minimize_unimodal, softmax
from analysis.metrics.calibration import _nll_at_inverse_temperature, fit_temperature


@pytest.mark.parametrize("scale", [1.0, 50.0, 1000.0])  # 1000: exp overflows without the max shift
def test_softmax_family_matches_scipy(scale):
    z = np.random.default_rng(0).normal(size=(64, 7)) * scale
    np.testing.assert_allclose(logsumexp(z, axis=1), special.logsumexp(z, axis=1), rtol=1e-12)
    np.testing.assert_allclose(log_softmax(z, axis=1), special.log_softmax(z, axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(softmax(z, axis=1), special.softmax(z, axis=1), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(logsumexp(z, axis=0), special.logsumexp(z, axis=0), rtol=1e-12)


def test_average_ranks_by_hand():
    # sorted: 1.0 (rank 1), 2.0 ×3 (ranks 2,3,4 -> 3), 5.0 (rank 5)
    assert average_ranks(np.array([2.0, 5.0, 2.0, 1.0, 2.0])).tolist() == [3.0, 5.0, 3.0, 1.0, 3.0]
    assert average_ranks(np.array([7.0])).tolist() == [1.0]
    assert average_ranks(np.array([], dtype=float)).tolist() == []


def test_average_ranks_matches_scipy_with_many_ties():
    x = np.random.default_rng(1).integers(0, 20, size=2000).astype(float)
    np.testing.assert_array_equal(average_ranks(x), stats.rankdata(x))


def test_minimize_unimodal_finds_the_minimum():
    assert minimize_unimodal(lambda x: (x - 0.3) ** 2, -2.0, 5.0, xatol=1e-8) == pytest.approx(0.3, abs=1e-7)
    assert minimize_unimodal(lambda x: abs(x + 1.5), -2.0, 5.0, xatol=1e-8) == pytest.approx(-1.5, abs=1e-7)
    assert minimize_unimodal(lambda x: x, -2.0, 5.0, xatol=1e-8) == pytest.approx(-2.0, abs=1e-7)  # at a bound


def test_temperature_matches_scipy_bounded_search():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 10, size=500)
    z = rng.normal(size=(500, 10)) * 4.0
    z[np.arange(500), y] += 3.0  # overconfident: T > 1
    z_true = z[np.arange(500), y]
    ref = optimize.minimize_scalar(lambda u: _nll_at_inverse_temperature(z, z_true, math.exp(u)),
                                   bounds=(-math.log(100.0), -math.log(0.01)), method="bounded",
                                   options={"xatol": 1e-10})
    assert fit_temperature(z, y) == pytest.approx(math.exp(-ref.x), rel=1e-4)
    assert fit_temperature(z, y) > 1.0

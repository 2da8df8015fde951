import math

import numpy as np
import pytest
import torch
from scipy.special import softmax
from torchmetrics.functional.classification import multiclass_calibration_error

from analysis.metrics.calibration import (
    accuracy,
    bin_edges,
    brier,
    ece,
    ece_from_logits,
    fit_temperature,
    nll,
    reliability_diagram,
    top_label,
)

LOG3 = math.log(3.0)


def test_accuracy_nll_brier_hand_computed():
    # p = [0.5, 0.5] (label 0, arg-max ties -> class 0) and p = [0.75, 0.25] (label 1)
    logits = [[0.0, 0.0], [LOG3, 0.0]]
    labels = [0, 1]
    assert accuracy(logits, labels) == 0.5
    assert nll(logits, labels) == pytest.approx((math.log(2) + math.log(4)) / 2)
    assert brier(logits, labels) == pytest.approx((0.5 + (0.75**2 + 0.75**2)) / 2)


def test_perfect_confident_prediction():
    logits = [[50.0, 0.0, 0.0]]
    assert accuracy(logits, [0]) == 1.0
    assert nll(logits, [0]) == pytest.approx(0.0, abs=1e-12)
    assert brier(logits, [0]) == pytest.approx(0.0, abs=1e-12)


def test_accepts_bfloat16_and_float16_tensors():
    z = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    for dtype in (torch.bfloat16, torch.float16):
        assert nll(z.to(dtype), torch.tensor([1, 0])) == pytest.approx(nll(z, torch.tensor([1, 0])))


def test_nll_matches_torch_cross_entropy():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 7)) * 4
    y = rng.integers(0, 7, 50)
    ref = torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(y)).item()
    assert nll(torch.tensor(z, dtype=torch.float64), torch.tensor(y)) == pytest.approx(ref, rel=1e-12)


def test_top_label():
    conf, pred = top_label([[0.0, LOG3], [2.0, 2.0]])
    np.testing.assert_allclose(conf, [0.75, 0.5])
    np.testing.assert_array_equal(pred, [1, 0])


def test_bin_edges_exact():
    np.testing.assert_array_equal(bin_edges(4), [0, 0.25, 0.5, 0.75, 1.0])
    assert bin_edges(10)[3] == 0.3


def test_ece_hand_computed():
    # bins [0, .5], (.5, 1]: {0.3 (ok), 0.4 (wrong)} and {0.9 (ok)}
    value = ece([0.3, 0.4, 0.9], [True, False, True], bins=2)
    assert value == pytest.approx((2 * abs(0.5 - 0.35) + 1 * abs(1 - 0.9)) / 3)


def test_ece_edge_falls_into_lower_bin():
    # with 2 bins, 0.5 is on the edge: right-closed bins put it into [0, 0.5] with nothing else
    assert ece([0.5, 0.6], [True, False], bins=2) == pytest.approx((0.5 + 0.6) / 2)
    diagram = reliability_diagram([0.5, 0.6], [True, False], bins=2)
    np.testing.assert_array_equal(diagram.count, [1, 1])


def test_ece_every_edge_and_one():
    # bins of width 0.25; each confidence on an upper edge, 1.0 in the last bin, 0.0 in the first
    diagram = reliability_diagram([0.0, 0.25, 0.5, 0.75, 1.0], [True, True, False, True, True], bins=4)
    np.testing.assert_array_equal(diagram.count, [2, 1, 1, 1])
    np.testing.assert_allclose(diagram.confidence, [0.125, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(diagram.accuracy, [1.0, 0.0, 1.0, 1.0])
    assert diagram.ece == pytest.approx((2 * 0.875 + 0.5 + 0.25 + 0.0) / 5)


def test_ece_default_bins_interior_edges_fall_into_lower_bin():
    # 15 bins: c = m/15 (the float nearest to it) is the upper edge of bin m, so each bin gets one sample
    conf = np.arange(1, 16) / 15
    correct = np.arange(1, 16) % 2 == 0
    diagram = reliability_diagram(conf, correct)
    np.testing.assert_array_equal(diagram.count, np.ones(15, dtype=np.int64))
    np.testing.assert_array_equal(diagram.confidence, conf)
    assert diagram.ece == pytest.approx(np.abs(correct - conf).mean())
    # just above an edge moves to the next bin; 0.0 joins the first bin
    moved = reliability_diagram([np.nextafter(1 / 15, 1.0), 0.0], [True, True])
    np.testing.assert_array_equal(moved.count[:2], [1, 1])


def test_all_wrong():
    logits = [[0.0, LOG3], [LOG3, 0.0]]  # confidences 0.75, both wrong
    labels = [0, 1]
    assert accuracy(logits, labels) == 0.0
    assert nll(logits, labels) == pytest.approx(math.log(4))
    assert brier(logits, labels) == pytest.approx(0.75**2 + 0.75**2)
    assert ece_from_logits(logits, labels) == pytest.approx(0.75)
    assert ece([0.2, 1.0], [False, False]) == pytest.approx(0.6)


def test_confidence_one_all_correct_is_calibrated():
    assert ece([1.0, 1.0, 1.0], [True, True, True]) == 0.0
    assert ece([1.0, 1.0], [True, False]) == pytest.approx(0.5)


def test_reliability_empty_bins_are_nan():
    diagram = reliability_diagram([0.95], [True], bins=15)
    assert diagram.count.sum() == 1 and diagram.count[-1] == 1
    assert np.isnan(diagram.confidence[:-1]).all() and np.isnan(diagram.accuracy[:-1]).all()


def test_single_sample_ece():
    assert ece([0.8], [False]) == pytest.approx(0.8)
    assert ece([0.8], [True]) == pytest.approx(0.2)


def test_ece_matches_torchmetrics_off_edges():
    rng = np.random.default_rng(0)
    for k, n_bins in ((3, 15), (10, 15), (10, 7)):
        z = rng.normal(size=(2000, k)) * 3
        y = rng.integers(0, k, 2000)
        probs = softmax(z, axis=1)
        conf, pred = top_label(z)
        edges = bin_edges(n_bins)
        # conventions differ only for confidences on an edge or equal to 1.0
        assert np.min(np.abs(conf[:, None] - edges[None, :])) > 1e-9
        ref = multiclass_calibration_error(
            torch.tensor(probs), torch.tensor(y), num_classes=k, n_bins=n_bins, norm="l1"
        ).item()
        assert ece(conf, pred == y, bins=n_bins) == pytest.approx(ref, abs=1e-6)
        assert ece_from_logits(z, y, bins=n_bins) == pytest.approx(ref, abs=1e-6)


def _calibrated_sample(n, k, scale, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 2
    p = softmax(z, axis=1)
    y = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)  # labels drawn from the model itself
    return z * scale, y


def test_temperature_recovers_scaling_of_calibrated_logits():
    z, y = _calibrated_sample(20_000, 5, 3.0, seed=1)
    temperature = fit_temperature(z, y)
    assert temperature == pytest.approx(3.0, rel=0.05)
    assert nll(z / temperature, y) < nll(z, y)
    assert ece_from_logits(z / temperature, y) < ece_from_logits(z, y)


def test_temperature_is_one_for_calibrated_logits():
    z, y = _calibrated_sample(20_000, 5, 1.0, seed=2)
    assert fit_temperature(z, y) == pytest.approx(1.0, rel=0.05)


def test_temperature_matches_grid_search():
    z, y = _calibrated_sample(3000, 4, 0.4, seed=3)
    grid = np.exp(np.linspace(np.log(0.05), np.log(5), 801))
    best = grid[np.argmin([nll(z / t, y) for t in grid])]
    assert fit_temperature(z, y) == pytest.approx(best, rel=0.01)


def test_temperature_never_raises_nll_near_calibration():
    # fitted T close to 1: the improvement is tiny, the comparison must still hold exactly as reported
    for seed in range(60):
        z, y = _calibrated_sample(int(np.random.default_rng(seed).integers(5, 300)), 4, 1.0, seed)
        t = fit_temperature(z, y)
        assert nll(z / t, y) <= nll(z, y)


def test_temperature_bad_bounds():
    with pytest.raises(ValueError, match="bounds"):
        fit_temperature([[0.0, 1.0]], [0], bounds=(2.0, 3.0))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: nll([[0.0, 1.0]], [0, 1]), "labels"),
        (lambda: nll([[0.0, 1.0]], [2]), "labels"),
        (lambda: nll([[0.0, 1.0]], [-1]), "labels"),
        (lambda: nll(np.zeros((0, 3)), []), "logits"),
        (lambda: nll([0.0, 1.0], [0]), "logits"),
        (lambda: brier([[0.0, float("nan")]], [0]), "logits"),
        (lambda: accuracy([[0.0, float("inf")]], [0]), "logits"),
        (lambda: accuracy([[0.0, 1.0]], [0.5]), "labels"),
        (lambda: ece([0.2, 1.2], [True, True]), "confidences"),
        (lambda: ece([0.2, float("nan")], [True, True]), "confidences"),
        (lambda: ece([0.2, 0.3], [True]), "correct"),
        (lambda: ece([], []), "confidences"),
        (lambda: ece([0.2], [True], bins=0), "bins"),
        (lambda: fit_temperature([[0.0, 1.0]], [3]), "labels"),
    ],
)
def test_bad_input_names_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()

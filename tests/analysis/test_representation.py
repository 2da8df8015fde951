import math

import numpy as np
import pytest

from analysis.metrics.representation import (
    centre_distance_matrix,
    centre_distance_spread,
    class_separation,
    linear_probe_accuracy,
)


def _brute_force_separation(x, y):
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    classes = np.unique(y)
    dist = 1.0 - u @ u.T
    k = len(classes)
    within = sum(dist[np.ix_(y == c, y == c)].mean() for c in classes) / k
    total = sum(dist[np.ix_(y == a, y == b)].mean() for a in classes for b in classes) / k**2
    return within, total, 1 - within / total


def test_separation_perfect_clusters():
    x = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    sep = class_separation(x, [0, 0, 1, 1])
    assert sep.d_within == pytest.approx(0.0, abs=1e-12)
    assert sep.d_total == pytest.approx(0.5)
    assert sep.r2 == pytest.approx(1.0)


def test_separation_no_class_structure():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    sep = class_separation(x, [0, 0, 1, 1])
    assert sep.d_within == pytest.approx(0.5)
    assert sep.d_total == pytest.approx(0.5)
    assert sep.r2 == pytest.approx(0.0, abs=1e-12)


def test_separation_matches_pairwise_definition_with_unequal_classes():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [5, 20, 11])
    x = rng.normal(size=(len(y), 8)) + 2 * np.eye(8)[y]
    sep = class_separation(x, y)
    within, total, r2 = _brute_force_separation(x, y)
    assert (sep.d_within, sep.d_total, sep.r2) == pytest.approx((within, total, r2))


def test_separation_invariant_to_per_sample_scale():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 4))
    y = rng.integers(0, 3, 30)
    a = class_separation(x, y)
    b = class_separation(x * rng.uniform(0.1, 10, size=(30, 1)), y)
    assert (a.d_within, a.d_total, a.r2) == pytest.approx((b.d_within, b.d_total, b.r2))


def test_centre_distance_matrix_hand_computed():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [3.0, 3.0]])
    m = centre_distance_matrix(x, [0, 1, 2, 2])
    d = 1 - 1 / math.sqrt(2)
    expected = np.array([[0, 1, d], [1, 0, d], [d, d, 0]])
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(m, expected, atol=1e-12)
    np.testing.assert_allclose(m.sum(axis=1), 1.0)


def test_centre_distance_absent_class_is_nan():
    m = centre_distance_matrix(np.eye(3)[:2], [0, 2], num_classes=4)
    assert m.shape == (4, 4)
    assert np.isnan(m[1]).all() and np.isnan(m[:, 3]).all()
    assert m[0, 2] == pytest.approx(1.0)


def test_centre_distance_spread():
    simplex = np.eye(4)  # all centres equidistant
    assert centre_distance_spread(centre_distance_matrix(simplex, [0, 1, 2, 3])) == pytest.approx(
        0.0, abs=1e-12
    )
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert centre_distance_spread(centre_distance_matrix(x, [0, 1, 2])) > 0.1


def test_probe_separable_blobs_and_random_labels():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 4, size=(4, 16))
    y_tr, y_te = rng.integers(0, 4, 800), rng.integers(0, 4, 400)
    x_tr = centres[y_tr] + rng.normal(size=(800, 16))
    x_te = centres[y_te] + rng.normal(size=(400, 16))
    assert linear_probe_accuracy(x_tr, y_tr, x_te, y_te) > 0.95
    assert linear_probe_accuracy(x_tr, y_tr, x_te, y_te, max_train=100, max_iter=50) > 0.9
    shuffled = rng.permutation(y_te)
    assert linear_probe_accuracy(x_tr, y_tr, x_te, shuffled) < 0.45


def test_probe_is_seeded():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(300, 5)), rng.integers(0, 3, 300)
    a = linear_probe_accuracy(x, y, x, y, max_train=50, seed=3)
    assert a == linear_probe_accuracy(x, y, x, y, max_train=50, seed=3)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: class_separation(np.ones((3, 2)), [0, 1]), "labels"),
        (lambda: class_separation(np.ones(3), [0, 1, 1]), "features"),
        (lambda: class_separation([[1.0, float("nan")]], [0]), "features"),
        (lambda: class_separation(np.ones((2, 2)), [0, -1]), "labels"),
        (lambda: centre_distance_matrix(np.ones((2, 2)), [0, 3], num_classes=2), "labels"),
        (
            lambda: linear_probe_accuracy(np.ones((4, 2)), [0, 0, 0, 0], np.ones((2, 2)), [0, 1]),
            "train_labels",
        ),
        (
            lambda: linear_probe_accuracy(np.ones((4, 2)), [0, 1, 0, 1], np.ones((2, 3)), [0, 1]),
            "test_features",
        ),
        (lambda: linear_probe_accuracy(np.ones((4, 2)), [0, 1, 0, 1], np.ones((2, 2)), [0]), "test_labels"),
        (lambda: linear_probe_accuracy(np.ones((4, 2)), [0, 1, 0, 1], np.ones((2, 2)), [0, 1], c=0), "c="),
        (
            lambda: linear_probe_accuracy(
                np.ones((4, 2)), [0, 1, 0, 1], np.ones((2, 2)), [0, 1], max_train=0
            ),
            "max_train",
        ),
    ],
)
def test_bad_input_names_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()

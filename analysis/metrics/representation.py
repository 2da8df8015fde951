"""Quality of penultimate-layer features: class separation, class-centre distances and a linear probe.

Class separation (Kornblith et al. 2021, used by the MaxSup paper of Zhou et al.), cosine distance
``d(x, y) = 1 - x.y / (|x| |y|)``, every class weighted equally, self-pairs included::

    d_within = 1/K   sum_k        mean_{m, n in k}          d(x_m, x_n)
    d_total  = 1/K^2 sum_{j, k}   mean_{m in j, n in k}     d(x_m, x_n)
    R^2      = 1 - d_within / d_total

With unit vectors ``u`` and class means ``mu_k`` of them these are ``1 - mean_k |mu_k|^2`` and
``1 - |mean_k mu_k|^2``, so the cost is O(N D). ``K`` counts the classes present in ``labels``. A feature
vector of all zeros is treated as a zero unit vector (similarity 0 to everything).

Class-centre distances (the LLS paper): centres ``c_i`` are the class means of the raw features,
``cd(i, j) = 1 - cos(c_i, c_j)`` and the matrix is L1-normalised per row, ``cd(i, j) / sum_j cd(i, j)``.
Its spread (coefficient of variation of the off-diagonal entries) is 0 when all classes are equidistant.

Linear probe (MaxSup paper): L2-regularised multinomial logistic regression (scikit-learn, lbfgs) on
standardised frozen features, fit on (a seeded subsample of at most ``max_train``) training features and
scored on test features; iterations are capped for speed.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.metrics._inputs import as_labels, as_logits, check_positive_int


@dataclass(frozen=True)
class Separation:
    d_within: float
    d_total: float
    r2: float


def _features_labels(features: Any, labels: Any, name: str = "features") -> tuple[np.ndarray, np.ndarray]:
    x = as_logits(features, name)
    y = as_labels(labels, x.shape[0], None, name.replace("features", "labels"))
    return x, y


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norm = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    return x / np.where(norm > 0, norm, 1.0)


def _class_means(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(classes present, their mean rows)."""
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    members = (inverse[None, :] == np.arange(len(classes))[:, None]).astype(x.dtype)
    return classes, (members @ x) / counts[:, None]


def class_separation(features: Any, labels: Any) -> Separation:
    x, y = _features_labels(features, labels)
    _, means = _class_means(_unit_rows(x), y)
    d_within = float(1.0 - (means * means).sum(axis=1).mean())
    centre = means.mean(axis=0)
    d_total = float(1.0 - centre @ centre)
    r2 = 1.0 - d_within / d_total if d_total > 0 else math.nan
    return Separation(d_within=d_within, d_total=d_total, r2=float(r2))


def centre_distance_matrix(features: Any, labels: Any, num_classes: int | None = None) -> np.ndarray:
    """(K, K) L1-normalised cosine distances between class centres; NaN rows/columns for absent classes."""
    x, y = _features_labels(features, labels)
    k = int(y.max()) + 1 if num_classes is None else check_positive_int(num_classes, "num_classes")
    if y.max() >= k:
        raise ValueError(f"labels has values outside [0, {k})")
    classes, centres = _class_means(x, y)
    unit = _unit_rows(centres)
    cd = 1.0 - np.clip(unit @ unit.T, -1.0, 1.0)
    np.fill_diagonal(cd, 0.0)
    row_sum = cd.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        normed = np.where(row_sum > 0, cd / row_sum, np.nan)
    out = np.full((k, k), np.nan)
    out[np.ix_(classes, classes)] = normed
    return out


def centre_distance_spread(matrix: np.ndarray) -> float:
    """Coefficient of variation of the finite off-diagonal entries (0: all classes equidistant)."""
    off = matrix[~np.eye(len(matrix), dtype=bool)]
    off = off[np.isfinite(off)]
    if len(off) == 0 or off.mean() <= 0:
        return math.nan
    return float(off.std() / off.mean())


def linear_probe_accuracy(
    train_features: Any,
    train_labels: Any,
    test_features: Any,
    test_labels: Any,
    *,
    c: float = 1.0,
    max_train: int = 10_000,
    max_iter: int = 200,
    seed: int = 0,
    blas_threads: int | None = 1,
) -> float:
    """Test accuracy of a logistic-regression probe trained on frozen training features.

    ``blas_threads`` caps BLAS threads during the fit (trials run side by side; oversubscribed BLAS threads
    made the fit 10x slower on 2 busy cores); None leaves the library default.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    x_tr, y_tr = _features_labels(train_features, train_labels, "train_features")
    x_te, y_te = _features_labels(test_features, test_labels, "test_features")
    if x_te.shape[1] != x_tr.shape[1]:
        raise ValueError(
            f"test_features has {x_te.shape[1]} columns; expected {x_tr.shape[1]} like train_features"
        )
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not (c > 0 and math.isfinite(c)):
        raise ValueError(f"c={c!r} is not allowed; allowed: a finite float > 0")
    max_train = check_positive_int(max_train, "max_train")
    max_iter = check_positive_int(max_iter, "max_iter")
    if blas_threads is not None:
        blas_threads = check_positive_int(blas_threads, "blas_threads")
    if len(np.unique(y_tr)) < 2:
        raise ValueError("train_labels holds a single class; the probe needs at least two")
    if len(y_tr) > max_train:
        keep = np.random.default_rng(seed).choice(len(y_tr), size=max_train, replace=False)
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
    limits = threadpool_limits(limits=blas_threads) if blas_threads is not None else contextlib.nullcontext()
    with limits, warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the iteration cap is deliberate
        probe.fit(x_tr.astype(np.float32), y_tr)
        predicted = probe.predict(x_te.astype(np.float32))
    return float((predicted == y_te).mean())

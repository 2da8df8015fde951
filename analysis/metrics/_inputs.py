"""Input conversion and validation shared by the metric modules.

Every public metric accepts torch tensors or array-likes, converts them to NumPy (float64 for real values)
and raises ``ValueError`` naming the offending argument for: empty input, wrong number of dimensions,
mismatched lengths, NaN/inf values, labels outside ``[0, K)`` and fractions outside ``(0, 1]``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":  # NumPy has no bfloat16
            x = x.float()
        x = x.numpy()
    return np.asarray(x)


def as_logits(logits: Any, name: str = "logits") -> np.ndarray:
    """(N, K) finite float64 array with N >= 1 and K >= 1."""
    arr = to_numpy(logits)
    if arr.ndim != 2:
        raise ValueError(f"{name} has shape {arr.shape}; expected (N, K)")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); expected at least one sample and one class")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def as_scores(scores: Any, name: str = "scores", n: int | None = None) -> np.ndarray:
    """(N,) finite float64 vector, optionally of a given length."""
    arr = to_numpy(scores)
    if arr.ndim != 1:
        raise ValueError(f"{name} has shape {arr.shape}; expected a 1-D vector")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty; expected at least one sample")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has length {arr.shape[0]}; expected {n} (one per sample)")
    if arr.dtype == bool:
        arr = arr.astype(np.float64)
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def as_confidences(confidences: Any, name: str = "confidences", n: int | None = None) -> np.ndarray:
    """Like :func:`as_scores`, and every value must lie in [0, 1]."""
    arr = as_scores(confidences, name, n)
    if (arr < 0).any() or (arr > 1).any():
        raise ValueError(f"{name} has values outside [0, 1]")
    return arr


def as_correct(correct: Any, n: int, name: str = "correct") -> np.ndarray:
    """(N,) bool vector: True where the prediction is right. Accepts bool or 0/1 values."""
    arr = to_numpy(correct)
    if arr.ndim != 1:
        raise ValueError(f"{name} has shape {arr.shape}; expected a 1-D vector")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has length {arr.shape[0]}; expected {n} (one per sample)")
    if arr.dtype != bool:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} must hold booleans or 0/1 values")
        arr = arr.astype(bool)
    return arr


def as_labels(labels: Any, n: int, num_classes: int | None, name: str = "labels") -> np.ndarray:
    """(N,) int64 vector with values in [0, num_classes)."""
    arr = to_numpy(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} has shape {arr.shape}; expected a 1-D vector")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has length {arr.shape[0]}; expected {n} (one per sample)")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty; expected at least one sample")
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        if (
            not np.issubdtype(arr.dtype, np.floating)
            or not np.all(np.isfinite(arr))
            or np.any(arr != np.round(arr))
        ):
            raise ValueError(f"{name} must hold integer class indices")
    arr = arr.astype(np.int64)
    if (arr < 0).any() or (num_classes is not None and (arr >= num_classes).any()):
        allowed = f"[0, {num_classes})" if num_classes is not None else ">= 0"
        raise ValueError(f"{name} has values outside {allowed}")
    return arr


def check_fraction(value: Any, name: str) -> float:
    """A float in (0, 1], e.g. a risk or a coverage."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"{name}={value!r} is not a number; allowed: a float in (0, 1]")
    value = float(value)
    if math.isnan(value) or not 0.0 < value <= 1.0:
        raise ValueError(f"{name}={value!r} is out of range; allowed: a float in (0, 1]")
    return value


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not allowed; allowed: {', '.join(choices)}")
    return value


def check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} is not allowed; allowed: an integer >= 1")
    return int(value)

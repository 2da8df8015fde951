"""NumPy forms of the few SciPy routines the per-trial metrics use.

Every trial worker imports the metrics; importing ``scipy.optimize`` and ``scipy.stats`` for these five
functions cost each worker ~0.8 s of CPU at start-up, before its first trial could begin.
The tests compare each one with SciPy's.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0  # 0.618…


def logsumexp(z: np.ndarray, axis: int = 1) -> np.ndarray:
    top = z.max(axis=axis, keepdims=True)
    return (top + np.log(np.exp(z - top).sum(axis=axis, keepdims=True))).squeeze(axis)


def log_softmax(z: np.ndarray, axis: int = 1) -> np.ndarray:
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(z: np.ndarray, axis: int = 1) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of a 1-D array, tied values sharing the mean of their ranks (``rankdata`` 'average')."""
    x = np.asarray(x)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    new_value = np.empty(len(xs), dtype=bool)
    new_value[:1] = True
    np.not_equal(xs[1:], xs[:-1], out=new_value[1:])
    starts = np.flatnonzero(new_value)
    ends = np.append(starts[1:], len(xs))  # a tie group holds ranks starts+1 … ends
    ranks = np.empty(len(xs), dtype=np.float64)
    ranks[order] = ((starts + 1 + ends) / 2.0)[np.cumsum(new_value) - 1]
    return ranks


def minimize_unimodal(f: Callable[[float], float], low: float, high: float, xatol: float) -> float:
    """The ``x`` in ``[low, high]`` minimising a unimodal ``f``, to within ``xatol``: golden-section search."""
    a, b = low, high
    c, d = b - GOLDEN * (b - a), a + GOLDEN * (b - a)
    fc, fd = f(c), f(d)
    while b - a > xatol:
        if fc <= fd:  # the minimum is in [a, d]
            b, d, fd = d, c, fc
            c = b - GOLDEN * (b - a)
            fc = f(c)
        else:  # in [c, b]
            a, c, fc = c, d, fd
            d = a + GOLDEN * (b - a)
            fd = f(d)
    return (a + b) / 2.0

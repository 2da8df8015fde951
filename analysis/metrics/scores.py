"""Confidence scores (higher = more confident), as a registry of frozen records.

- ``msp``: maximum softmax probability.
- ``max_logit``: the largest raw logit.
- ``neg_entropy``: minus the Shannon entropy (nats) of the softmax.
- ``lognorm``: normalised max logit of logit normalisation (Cattelan & Silva; Xia et al., Eq. 17) on
  centred logits ``v = z - mean_k z_k``: ``max_k v_k / ||v||_p``. Following Cattelan & Silva's convention,
  ``p = 0`` means *no normalisation*: the score is ``max_k v_k`` (the max logit of the centred logits,
  which ranks samples differently from ``max_logit``). ``0 < p < 1`` uses the quasi-norm
  ``(sum |v_k|^p)^(1/p)``. All logits equal gives ``v = 0`` and the score 0. Centring makes every score
  here except ``max_logit`` invariant to adding one constant to all logits of a sample.

Scores are computed in float64 so that saturated probabilities (MSP of 1.0 in float32) stay distinct.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import log_softmax

from analysis.core.registry import HParam, Registry, check_hparams
from analysis.metrics._inputs import as_logits


@dataclass(frozen=True)
class ScoreInfo:
    name: str
    fn: Callable[..., np.ndarray]  # (float64 logits (N, K), **hparams) -> (N,)
    hparams: tuple[HParam, ...] = ()
    reference: str = ""
    summary: str = ""


SCORES: Registry[ScoreInfo] = Registry("confidence score")


def list_scores() -> list[str]:
    return SCORES.names()


def get_score_info(name: str) -> ScoreInfo:
    return SCORES.get(name)


def compute_score(name: str, logits: Any, **hparams: Any) -> np.ndarray:
    """Score of each sample, float64 (N,). Raises ``ValueError`` for unknown names or hyperparameters."""
    info = get_score_info(name)
    return info.fn(as_logits(logits), **check_hparams(name, info.hparams, hparams))


def _msp(z: np.ndarray) -> np.ndarray:
    # max_k softmax_k = 1 / sum_k exp(z_k - z_max): no full softmax needed
    return 1.0 / np.exp(z - z.max(axis=1, keepdims=True)).sum(axis=1)


def _max_logit(z: np.ndarray) -> np.ndarray:
    return z.max(axis=1)


def _neg_entropy(z: np.ndarray) -> np.ndarray:
    logp = log_softmax(z, axis=1)
    return (np.exp(logp) * logp).sum(axis=1)


def _lognorm(z: np.ndarray, p: float) -> np.ndarray:
    # subtracting the max first is exact for typical logits, so an exactly representable shift of all
    # logits gives bit-identical scores (plain z - mean(z) would differ by rounding)
    v = z - z.max(axis=1, keepdims=True)
    v -= v.mean(axis=1, keepdims=True)
    top = v.max(axis=1)
    if p == 0:
        return top
    # ||v||_p = m * ||v / m||_p with m = max_k |v_k|, so |v|^p cannot overflow for large p
    m = np.abs(v).max(axis=1)
    safe_m = np.where(m > 0, m, 1.0)
    norm_over_m = ((np.abs(v) / safe_m[:, None]) ** p).sum(axis=1) ** (1.0 / p)  # >= 1 where m > 0
    return np.where(m > 0, (top / safe_m) / np.maximum(norm_over_m, 1.0), 0.0)


SCORES.register(
    ScoreInfo("msp", _msp, summary="maximum softmax probability", reference="Hendrycks & Gimpel 2017")
)
SCORES.register(ScoreInfo("max_logit", _max_logit, summary="largest raw logit"))
SCORES.register(ScoreInfo("neg_entropy", _neg_entropy, summary="minus the entropy of the softmax"))
SCORES.register(
    ScoreInfo(
        "lognorm",
        _lognorm,
        hparams=(
            HParam(
                "p",
                default=2.0,
                low=0.0,
                grid=tuple(float(p) for p in range(10)),
                help="norm order of the centred logits; 0 = no normalisation",
            ),
        ),
        reference="Cattelan & Silva 2023; Xia et al., Eq. 17",
        summary="max of centred logits over their p-norm",
    )
)

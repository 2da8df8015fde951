"""What the training loop calls: cheap per-epoch metrics and the full end-of-trial evaluation.

Conventions (see the metric modules): ECE with 15 right-closed bins; AURC by the trapezoid rule with the
origin prepended; ties averaged over orders; risk 5% for coverage at risk; the score for ``*_lognorm`` keys
is the logit-normalised max logit with ``p`` chosen on validation (MSP when no ``p`` beats it, reported as
``test/lognorm_p = NaN`` and ``test/lognorm_fallback = 1``). Temperature is fitted on validation NLL.

Keys of :func:`final_metrics` (present when the inputs they need are given):

- ``val/…`` and ``test/…``: ``acc nll brier ece aurc eaurc cov_at_5 auroc``;
  ``test/aurc_max_logit``, ``test/aurc_neg_entropy``.
- temperature scaling (fitted on val): ``test/temperature``, ``val/nll_ts``, ``val/ece_ts``, ``test/nll_ts``,
  ``test/ece_ts``; and with the temperature of a fixed grid that has the lowest validation ECE (the label
  relaxation paper's way): ``test/temperature_grid``, ``test/ece_ts_grid``.
- logit normalisation (``p`` chosen on val): ``test/lognorm_p``, ``test/lognorm_fallback``, and for ``val``
  and ``test``: ``aurc_lognorm eaurc_lognorm cov_at_5_lognorm auroc_lognorm``.
- features, unless ``representation=False``: ``test/d_within``, ``test/d_total``, ``test/r2``,
  ``test/centre_dist_spread`` (and ``train/…`` for the first three when ``train`` has features);
- probes (whatever ``representation`` is): ``test/probe_acc`` (fit on train features, scored on test
  features); ``transfer/probe_acc`` (fit on ``transfer_train``, scored on ``transfer_test``).
- shift (test merged with its corrupted copy): ``shift/acc shift/ece shift/aurc shift/eaurc shift/cov_at_5
  shift/auroc shift/aurc_lognorm shift/eaurc_lognorm shift/cov_at_5_lognorm``; ``shift/acc_corrupted`` is
  the accuracy on the corrupted copy alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from analysis.metrics._inputs import as_labels, as_logits
from analysis.metrics.calibration import brier, ece, fit_temperature, nll, temperature_by_ece, top_label
from analysis.metrics.lognorm import chosen_score, select_lognorm_p
from analysis.metrics.representation import (
    centre_distance_matrix,
    centre_distance_spread,
    class_separation,
    linear_probe_accuracy,
)
from analysis.metrics.scores import compute_score
from analysis.metrics.selective import (
    DEFAULT_RISK,
    RISK_KEY,
    misclassification_auroc,
    risk_coverage_curve,
    selective_summary,
)

RISK = DEFAULT_RISK
F16_MAX = float(np.finfo(np.float16).max)
F16_MIN = -F16_MAX


@dataclass
class Outputs:
    """Everything the model produced on one split."""

    logits: torch.Tensor  # (N, K) float32 on CPU
    labels: torch.Tensor  # (N,) int64
    features: torch.Tensor | None = None  # (N, D) penultimate features, float32

    def __post_init__(self) -> None:
        if len(self.logits.shape) != 2:
            raise ValueError(f"logits has shape {tuple(self.logits.shape)}; expected (N, K)")
        n = self.logits.shape[0]
        if tuple(self.labels.shape) != (n,):
            raise ValueError(f"labels has shape {tuple(self.labels.shape)}; expected ({n},)")
        if self.features is not None and (len(self.features.shape) != 2 or self.features.shape[0] != n):
            raise ValueError(f"features has shape {tuple(self.features.shape)}; expected ({n}, D)")


def _arrays(out: Outputs, name: str) -> tuple[np.ndarray, np.ndarray]:
    z = as_logits(out.logits, f"{name}.logits")
    return z, as_labels(out.labels, z.shape[0], z.shape[1], f"{name}.labels")


def _selective(score: np.ndarray, correct: np.ndarray, suffix: str = "") -> dict[str, float]:
    summary = selective_summary(score, correct, risk=RISK)
    return {
        f"aurc{suffix}": summary["aurc"],
        f"eaurc{suffix}": summary["eaurc"],
        f"{RISK_KEY}{suffix}": summary["cov_at_risk"],
        f"auroc{suffix}": misclassification_auroc(score, correct),
    }


def _split_metrics(z: np.ndarray, y: np.ndarray) -> dict[str, float]:
    conf, pred = top_label(z)
    correct = pred == y
    out = {"acc": float(correct.mean()), "nll": nll(z, y), "brier": brier(z, y), "ece": ece(conf, correct)}
    out.update(_selective(conf, correct))
    return out


def epoch_metrics(logits: Any, labels: Any) -> dict[str, float]:
    """Cheap metrics, un-prefixed keys (acc, nll, brier, ece, aurc); the loop prefixes them with ``val/``."""
    z = as_logits(logits)
    y = as_labels(labels, z.shape[0], z.shape[1])
    conf, pred = top_label(z)
    correct = pred == y
    return {
        "acc": float(correct.mean()),
        "nll": nll(z, y),
        "brier": brier(z, y),
        "ece": ece(conf, correct),
        "aurc": selective_summary(conf, correct, risk=RISK)["aurc"],
    }


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}/{k}": float(v) for k, v in metrics.items()}


def final_metrics(val: Outputs, test: Outputs, **options: Any) -> dict[str, float]:
    """Full evaluation at the end of a trial; keys are namespaced (see the module docstring). ``options``:
    those of :func:`final_results`."""
    return final_results(val, test, **options)[0]


def final_results(
    val: Outputs,
    test: Outputs,
    *,
    train: Outputs | None = None,
    shifted_test: Outputs | None = None,
    transfer_train: Outputs | None = None,
    transfer_test: Outputs | None = None,
    representation: bool = True,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """:func:`final_metrics` and the K×K matrices computed on the way: ``centre_distances`` (the LLS paper's
    L1-normalised cosine distances between the test features' class centres; NaN rows/columns for classes
    absent from test) when ``representation`` and ``test`` has features."""
    zv, yv = _arrays(val, "val")
    zt, yt = _arrays(test, "test")
    if zv.shape[1] != zt.shape[1]:
        raise ValueError(f"test.logits has {zt.shape[1]} classes; expected {zv.shape[1]} like val.logits")
    out = _prefixed("val", _split_metrics(zv, yv))
    out.update(_prefixed("test", _split_metrics(zt, yt)))
    correct_t = zt.argmax(axis=1) == yt
    for score in ("max_logit", "neg_entropy"):
        out[f"test/aurc_{score}"] = selective_summary(compute_score(score, zt), correct_t, risk=RISK)["aurc"]

    temperature = fit_temperature(zv, yv)
    out["test/temperature"] = temperature
    for name, z, y in (("val", zv, yv), ("test", zt, yt)):
        conf_ts, pred_ts = top_label(z / temperature)
        out[f"{name}/nll_ts"] = nll(z / temperature, y)
        out[f"{name}/ece_ts"] = ece(conf_ts, pred_ts == y)
    grid_temperature = temperature_by_ece(zv, yv)
    out["test/temperature_grid"] = grid_temperature
    conf_ts, pred_ts = top_label(zt / grid_temperature)
    out["test/ece_ts_grid"] = ece(conf_ts, pred_ts == yt)

    choice = select_lognorm_p(zv, yv)
    out["test/lognorm_p"] = math.nan if choice.p is None else choice.p
    out["test/lognorm_fallback"] = float(choice.fallback)
    correct_v = zv.argmax(axis=1) == yv
    out.update(_prefixed("val", _selective(chosen_score(zv, choice.p), correct_v, "_lognorm")))
    out.update(_prefixed("test", _selective(chosen_score(zt, choice.p), correct_t, "_lognorm")))

    matrices: dict[str, np.ndarray] = {}
    if representation:
        rep, matrices = _representation(test, train)
        out.update(rep)
    if train is not None and train.features is not None and test.features is not None:
        out["test/probe_acc"] = linear_probe_accuracy(train.features, train.labels, test.features, test.labels)
    if (transfer_train is None) != (transfer_test is None):
        raise ValueError("transfer_train and transfer_test must be given together")
    if transfer_train is not None and transfer_test is not None:
        if transfer_train.features is None or transfer_test.features is None:
            raise ValueError(
                "transfer_train.features and transfer_test.features are required for the transfer probe"
            )
        out["transfer/probe_acc"] = linear_probe_accuracy(
            transfer_train.features, transfer_train.labels, transfer_test.features, transfer_test.labels
        )
    if shifted_test is not None:
        out.update(_shift_metrics(zt, yt, shifted_test, choice.p))
    return out, matrices


def _representation(test: Outputs, train: Outputs | None) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    out: dict[str, float] = {}
    splits = {"test": test} if train is None else {"test": test, "train": train}
    for name, split in splits.items():
        if split.features is None:
            continue
        sep = class_separation(split.features, split.labels)
        out.update({f"{name}/d_within": sep.d_within, f"{name}/d_total": sep.d_total, f"{name}/r2": sep.r2})
    if test.features is None:
        return out, {}
    matrix = centre_distance_matrix(test.features, test.labels, num_classes=test.logits.shape[1])
    out["test/centre_dist_spread"] = centre_distance_spread(matrix)
    return out, {"centre_distances": matrix}


def _shift_metrics(zt: np.ndarray, yt: np.ndarray, shifted: Outputs, p: float | None) -> dict[str, float]:
    zs, ys = _arrays(shifted, "shifted_test")
    if zs.shape[1] != zt.shape[1]:
        raise ValueError(f"shifted_test.logits has {zs.shape[1]} classes; expected {zt.shape[1]}")
    z = np.concatenate([zt, zs])
    y = np.concatenate([yt, ys])
    conf, pred = top_label(z)
    correct = pred == y
    out = {
        "acc": float(correct.mean()),
        "ece": ece(conf, correct),
        "acc_corrupted": float(correct[len(yt) :].mean()),
    }
    out.update(_selective(conf, correct))
    lognorm = _selective(chosen_score(z, p), correct, "_lognorm")
    out.update({k: v for k, v in lognorm.items() if not k.startswith("auroc")})
    return _prefixed("shift", out)


def per_sample_outputs(test: Outputs, lognorm_p: float | None) -> dict[str, np.ndarray]:
    """Per-sample columns of the test split, for Parquet.

    ``label``/``pred`` int64, ``msp`` and ``lognorm`` float64 (the chosen score; MSP when ``lognorm_p`` is
    None or NaN, i.e. the fallback), ``logits`` float16 (N, K), clipped to float16's finite range so that
    readers of the column (plots, bootstrap) never meet inf.
    """
    z, y = _arrays(test, "test")
    conf, pred = top_label(z)
    return {
        "label": y,
        "pred": pred.astype(np.int64),
        "msp": conf,
        "lognorm": chosen_score(z, lognorm_p),
        "logits": np.clip(z, F16_MIN, F16_MAX).astype(np.float16),
    }


def risk_coverage_curves(test: Outputs, lognorm_p: float | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(coverage, risk) of MSP and, unless MSP was kept, of the logit-normalised score, for plotting."""
    z, y = _arrays(test, "test")
    correct = z.argmax(axis=1) == y
    curves = {"MSP (raw)": risk_coverage_curve(compute_score("msp", z), correct)}
    if lognorm_p is not None and not math.isnan(lognorm_p):
        curves[f"logit-normalised (p={lognorm_p:g})"] = risk_coverage_curve(
            chosen_score(z, lognorm_p), correct
        )
    return {name: (c.coverage, c.risk) for name, c in curves.items()}

"""Per-trial PNG figures (MLflow artifacts): reliability diagram and risk-coverage curves.

Figures are drawn with matplotlib's object API on an Agg canvas, so no global backend is set and the
helpers are safe in worker processes without a display.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from analysis.metrics._inputs import as_labels, as_logits, as_scores
from analysis.metrics.calibration import DEFAULT_BINS, reliability_diagram, top_label
from analysis.plots.figure import save_figure


def plot_reliability(logits: Any, labels: Any, path: str | Path, bins: int = DEFAULT_BINS) -> Path:
    """Accuracy vs mean confidence per bin (bars), the diagonal, and the sample share per bin."""
    z = as_logits(logits)
    y = as_labels(labels, z.shape[0], z.shape[1])
    conf, pred = top_label(z)
    return plot_confidence_reliability(conf, pred == y, path, bins)


def plot_confidence_reliability(
    confidences: Any, correct: Any, path: str | Path, bins: int = DEFAULT_BINS
) -> Path:
    """:func:`plot_reliability` from top-label confidences and whether each prediction was right; given the
    float64 confidences the metrics used, the ECE in the title is the reported one."""
    diagram = reliability_diagram(confidences, correct, bins)
    edges = diagram.edges
    width = np.diff(edges)
    fig = Figure(figsize=(4.5, 5.5))
    ax, ax_count = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    filled = diagram.count > 0
    ax.bar(
        edges[:-1][filled],
        diagram.accuracy[filled],
        width=width[filled],
        align="edge",
        edgecolor="black",
        label="accuracy",
    )
    ax.bar(
        edges[:-1][filled],
        (diagram.confidence - diagram.accuracy)[filled],
        width=width[filled],
        bottom=diagram.accuracy[filled],
        align="edge",
        facecolor="none",
        edgecolor="tab:red",
        hatch="////",
        label="gap",
    )
    ax.plot([0, 1], [0, 1], "k--", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(f"reliability ({len(edges) - 1} bins), ECE = {diagram.ece:.4f}")
    ax.legend(loc="upper left")
    ax_count.bar(
        edges[:-1], diagram.count / diagram.count.sum(), width=width, align="edge", edgecolor="black"
    )
    ax_count.set_xlabel("top-label confidence")
    ax_count.set_ylabel("share")
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)


def plot_risk_coverage(curves: Mapping[str, tuple[Any, Any]], path: str | Path) -> Path:
    """One line per named ``(coverage, risk)`` curve, e.g. raw MSP vs logit-normalised."""
    if not curves:
        raise ValueError("curves is empty; expected at least one named (coverage, risk) pair")
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    for name, (coverage, risk) in curves.items():
        cov = as_scores(coverage, f"curves[{name!r}] coverage")
        r = as_scores(risk, f"curves[{name!r}] risk", len(cov))
        ax.plot(cov, r, label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("coverage")
    ax.set_ylabel("selective risk")
    ax.set_title("risk-coverage")
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)

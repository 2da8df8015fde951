"""Figures of the comparison report, one PNG each, drawn with matplotlib's object API on an Agg canvas.

Every figure names its axes, its metric and its direction, so that it reads without the report's text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.core.statuses import FINISHED, TrialStatus
from analysis.core.tables import HPARAM_PREFIX, METHOD
from analysis.metrics.calibration import DEFAULT_BINS, reliability_diagram
from analysis.metrics.selective import risk_coverage_curve
from analysis.plots.figure import save_figure
from analysis.stats import pareto_mask


def method_colors(methods: Sequence[str]) -> dict[str, tuple]:
    """A fixed colour per method name (sorted), the same in every figure of a report."""
    cmap = colormaps["tab10"]
    return {m: cmap(i % 10) for i, m in enumerate(sorted(set(methods)))}


def _direction(mode: str | None) -> str:
    return {"max": " (higher is better)", "min": " (lower is better)"}.get(mode or "", "")


MIN_COVERAGE = 0.1  # risk-coverage axes start here: below, a handful of samples make the risk jump
RISK_MARGIN = 1.1  # the risk axis ends this much above the highest risk drawn in the shown range


def risk_top(coverage: np.ndarray, risk: np.ndarray, min_coverage: float = MIN_COVERAGE) -> float:
    """Where a risk–coverage plot's risk axis ends for one curve: ``RISK_MARGIN`` times its highest risk at
    coverage ≥ ``min_coverage`` (0 when it has no point there)."""
    shown = np.asarray(coverage) >= min_coverage
    return float(np.asarray(risk)[shown].max()) * RISK_MARGIN if shown.any() else 0.0


def plot_risk_coverage_methods(samples: Mapping[str, Mapping[str, np.ndarray] | Sequence[Mapping[str, np.ndarray]]],
                               path: str | Path, min_coverage: float = MIN_COVERAGE) -> Path:
    """Risk–coverage curves of each method's chosen model: MSP (left) and logit-normalised score (right).

    ``samples[method]`` holds ``label``, ``pred``, ``msp`` and ``lognorm`` per test sample, or a list of them
    (one per seed of its final runs: a curve each, the legend's AURC their mean). The axes show coverage from
    ``min_coverage`` and the risk range of the curves there."""
    if not samples:
        raise ValueError("samples is empty; expected per-sample outputs of at least one method")
    runs = {m: list(v) if isinstance(v, (list, tuple)) else [v] for m, v in samples.items()}
    runs = {m: seeds for m, seeds in runs.items() if seeds}
    if not runs:
        raise ValueError("samples holds no per-sample outputs; expected those of at least one method")
    colors = method_colors(list(runs))
    fig = Figure(figsize=(11, 4.5))
    axes = fig.subplots(1, 2, sharey=True)
    top = 0.0
    for ax, (score, title) in zip(axes, (("msp", "raw: max softmax probability"),
                                         ("lognorm", "logit-normalised score"))):
        for method, seeds in runs.items():
            areas = []
            for i, cols in enumerate(seeds):
                correct = np.asarray(cols["pred"]) == np.asarray(cols["label"])
                curve = risk_coverage_curve(np.asarray(cols[score], dtype=np.float64), correct)
                areas.append(float((curve.risk.sum() - curve.risk[-1] / 2) / curve.n))
                top = max(top, risk_top(curve.coverage, curve.risk, min_coverage))
                ax.plot(curve.coverage, curve.risk, color=colors[method], linewidth=1.0 if len(seeds) > 1 else 1.5,
                        alpha=0.8, label="_" if i else method)
            line = ax.get_lines()[-len(seeds)]
            seeds_text = f", mean of {len(seeds)} seeds" if len(seeds) > 1 else ""
            line.set_label(f"{method} (AURC {np.mean(areas):.4f}{seeds_text})")
        ax.set_xlim(min_coverage, 1)
        ax.set_xlabel("coverage (share of test samples accepted)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylim(0, top if top > 0 else 1)
    axes[0].set_ylabel("selective risk (error rate among accepted; lower is better)")
    fig.suptitle(f"Risk–coverage of each method's chosen model (coverage ≥ {min_coverage:g})")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_reliability_methods(samples: Mapping[str, Mapping[str, np.ndarray]], path: str | Path,
                             bins: int = DEFAULT_BINS) -> Path:
    """One reliability diagram per method (accuracy vs confidence per bin; the diagonal is perfect)."""
    if not samples:
        raise ValueError("samples is empty; expected per-sample outputs of at least one method")
    n = len(samples)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(3.3 * cols, 3.3 * rows + 0.4))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (method, c) in zip(axes, samples.items()):
        correct = np.asarray(c["pred"]) == np.asarray(c["label"])
        d = reliability_diagram(np.asarray(c["msp"], dtype=np.float64), correct, bins)
        filled = d.count > 0
        width = np.diff(d.edges)
        ax.bar(d.edges[:-1][filled], d.accuracy[filled], width=width[filled], align="edge",
               edgecolor="black", linewidth=0.5, label="accuracy")
        ax.bar(d.edges[:-1][filled], (d.confidence - d.accuracy)[filled], bottom=d.accuracy[filled],
               width=width[filled], align="edge", facecolor="none", edgecolor="tab:red", hatch="////",
               linewidth=0.8, label="gap to confidence")  # hatched: readable over the bar when underconfident
        ax.plot([0, 1], [0, 1], "k--", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"{method}: ECE {d.ece:.4f}", fontsize=10)
        ax.set_xlabel("confidence (MSP)")
        ax.set_ylabel("accuracy")
    for ax in axes[n:]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Reliability diagrams of each method's best model ({bins} bins)")
    fig.tight_layout()
    return save_figure(fig, path)


def hparam_columns(trials: pd.DataFrame) -> list[tuple[str, str]]:
    """``(method, column)`` for every numeric hyperparameter that takes more than one value in a method."""
    out = []
    if METHOD not in trials:
        return out
    for method, group in trials.groupby(METHOD):
        for col in sorted(c for c in trials.columns if c.startswith(HPARAM_PREFIX)):
            values = pd.to_numeric(group[col], errors="coerce").dropna()
            if group[col].notna().any() and len(values) == group[col].notna().sum() and values.nunique() > 1:
                out.append((str(method), col))
    return out


def plot_metric_vs_hparam(trials: pd.DataFrame, metrics: Sequence[tuple[str, str | None]],
                          path: str | Path) -> Path | None:
    """Each metric (rows) against each method's hyperparameter (columns), one dot per trial (hollow: stopped
    by ASHA, its last value). Methods without a searched hyperparameter appear as a dashed line at their best.
    Returns None when no method searched a numeric hyperparameter."""
    pairs = hparam_columns(trials)
    if not pairs:
        return None
    metrics = [(k, mode) for k, mode in metrics if k in trials and trials[k].notna().any()]
    if not metrics:
        return None
    colors = method_colors(trials[METHOD].dropna().astype(str).tolist())
    swept = {m for m, _ in pairs}
    fixed = [m for m in trials[METHOD].dropna().astype(str).unique() if m not in swept]
    fig = Figure(figsize=(3.6 * len(pairs), 2.9 * len(metrics) + 0.5))
    axes = fig.subplots(len(metrics), len(pairs), squeeze=False)
    for j, (method, col) in enumerate(pairs):
        group = trials[trials[METHOD] == method]
        x = pd.to_numeric(group[col], errors="coerce")
        for i, (key, mode) in enumerate(metrics):
            ax = axes[i, j]
            y = pd.to_numeric(group[key], errors="coerce")
            done = (group["status"] == TrialStatus.COMPLETED).to_numpy()
            stopped = (group["status"] == TrialStatus.STOPPED).to_numpy()
            if done.any():
                ax.scatter(x[done], y[done], color=colors[method], label="completed")
            if stopped.any():
                ax.scatter(x[stopped], y[stopped], facecolors="none", edgecolors=colors[method],
                           label="stopped early")
            for other in fixed:
                finished = (trials[METHOD] == other) & trials["status"].isin(FINISHED)
                best = pd.to_numeric(trials.loc[finished, key], errors="coerce")
                best = best.max() if mode == "max" else best.min()
                if math.isfinite(best):
                    ax.axhline(best, color=colors[other], linestyle="--", linewidth=1, label=f"{other} (best)")
            if x.min() > 0 and x.max() / x.min() >= 10:
                ax.set_xscale("log")
            ax.set_xlabel(f"{method}: {col.removeprefix(HPARAM_PREFIX)}")
            ax.set_ylabel(key + _direction(mode), fontsize=8)
            ax.grid(alpha=0.3)
            if i == 0:
                ax.set_title(method)
                ax.legend(fontsize=7)
    fig.suptitle("Metric versus hyperparameter, every trial (final epoch)")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_pareto(trials: pd.DataFrame, keys: Sequence[tuple[str, str]], path: str | Path) -> Path | None:
    """Pairwise scatter of the objectives ``keys`` (``(metric, mode)``) over all trials; the fronts are those of
    the completed trials (ringed in black: the joint front; step line: each pair's 2-D front). Trials ASHA
    stopped are drawn as grey crosses at the epoch they stopped and are on no front."""
    keys = [(k, m) for k, m in keys if k in trials]
    if len(keys) < 2:
        return None
    frame = trials.dropna(subset=[k for k, _ in keys])
    stopped = frame[frame["status"] == TrialStatus.STOPPED] if "status" in frame else frame.iloc[0:0]
    frame = frame[frame["status"] == TrialStatus.COMPLETED] if "status" in frame else frame
    if frame.empty:
        return None
    front = pareto_mask(frame[[k for k, _ in keys]].to_numpy(float), [m for _, m in keys])
    colors = method_colors(frame[METHOD].astype(str).tolist())
    pairs = [(a, b) for i, a in enumerate(keys) for b in keys[i + 1:]]
    fig = Figure(figsize=(4.6 * len(pairs), 4.3))
    axes = np.atleast_1d(fig.subplots(1, len(pairs), squeeze=False)).ravel()
    for ax, ((kx, mx), (ky, my)) in zip(axes, pairs):
        for method, group in frame.groupby(frame[METHOD].astype(str)):
            ax.scatter(group[kx], group[ky], color=colors[method], label=method, s=25)
        limits = [_padded(frame[k]) for k in (kx, ky)]
        if not stopped.empty:  # dimmed, and left off the axes' range: they are shorter trainings
            ax.scatter(stopped[kx], stopped[ky], marker="x", color="grey", s=20, alpha=0.35,
                       label="stopped by ASHA (not on a front; may lie off the axes)")
        ax.set_xlim(*limits[0])
        ax.set_ylim(*limits[1])
        ax.scatter(frame.loc[front, kx], frame.loc[front, ky], facecolors="none", edgecolors="black", s=90,
                   linewidths=1.4, label="Pareto set (all objectives)")
        pts = frame[[kx, ky]].to_numpy(float)
        two_d = pareto_mask(pts, [mx, my])
        order = np.argsort(pts[two_d, 0])
        ax.step(pts[two_d, 0][order], pts[two_d, 1][order], where="post", color="black", linewidth=0.8,
                alpha=0.6)
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_xlabel(kx + _direction(mx))
        ax.set_ylabel(ky + _direction(my))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Pareto front of the completed trials: {', '.join(k for k, _ in keys)}")
    fig.tight_layout()
    return save_figure(fig, path)


def _padded(values: pd.Series, margin: float = 0.08) -> tuple[float, float]:
    """The range of ``values`` with a margin on each side (a single value gets a small one of its own)."""
    low, high = float(values.min()), float(values.max())
    pad = (high - low) * margin or max(abs(high) * 0.01, 1e-3)
    return low - pad, high + pad


def plot_learning_curves(epochs: pd.DataFrame, trials: pd.DataFrame, metric: str, mode: str | None,
                         path: str | Path, rungs: Sequence[int] = ()) -> Path | None:
    """``metric`` per epoch for every trial, coloured by method; an ✕ marks where ASHA stopped a trial and
    dotted lines the ASHA rungs (the epochs at which it compares trials)."""
    if epochs.empty or metric not in epochs:
        return None
    status = dict(zip(trials["trial_id"], trials["status"])) if "status" in trials else {}
    methods = epochs[METHOD].astype(str) if METHOD in epochs else pd.Series("?", index=epochs.index)
    colors = method_colors(methods.tolist())
    fig = Figure(figsize=(7.5, 4.6))
    ax = fig.subplots()
    seen: set[str] = set()
    stopped_label = "stopped by ASHA"
    for trial_id, group in epochs.groupby("trial_id"):
        group = group.sort_values("epoch")
        method = str(methods.loc[group.index[0]])
        ax.plot(group["epoch"], group[metric], color=colors[method], alpha=0.8, marker=".",
                label=method if method not in seen else None)
        seen.add(method)
        if status.get(trial_id) == TrialStatus.STOPPED:
            last = group.iloc[-1]
            ax.scatter([last["epoch"]], [last[metric]], marker="x", color="black", s=50, zorder=3,
                       label=stopped_label)
            stopped_label = None
    for r in rungs:
        ax.axvline(r, color="grey", linestyle=":", linewidth=1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch" + (" (dotted: ASHA rungs)" if rungs else ""))
    ax.set_ylabel(metric + _direction(mode))
    ax.set_title(f"Learning curves of all trials: {metric}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, k: int) -> np.ndarray:
    """Row-normalised confusion matrix: row = true class, column = predicted class (rows sum to 1)."""
    counts = np.zeros((k, k), dtype=np.float64)
    np.add.at(counts, (np.asarray(labels, dtype=np.int64), np.asarray(preds, dtype=np.int64)), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def off_diagonal_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the off-diagonal entries of two K×K matrices (NaN when one is constant)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"a and b must be square matrices of one shape; got {a.shape} and {b.shape}")
    off = ~np.eye(a.shape[0], dtype=bool)
    x, y = a[off], b[off]
    if x.std() == 0 or y.std() == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def plot_matrix_vs_confusion(matrix: np.ndarray, confusion: np.ndarray, class_names: Sequence[str],
                             title: str, path: str | Path) -> tuple[Path, float]:
    """The learned soft-label matrix next to the confusion matrix, off-diagonal (the diagonal, the target's
    own mass, would swamp the colour scale); returns the path and their off-diagonal correlation."""
    k = matrix.shape[0]
    names = list(class_names) if len(class_names) == k else [str(i) for i in range(k)]
    corr = off_diagonal_correlation(matrix, confusion)
    fig = Figure(figsize=(11, 5))
    axes = fig.subplots(1, 2)
    off = ~np.eye(k, dtype=bool)
    for ax, data, name in ((axes[0], matrix, "learned soft-label matrix"),
                           (axes[1], confusion, "confusion matrix (row-normalised)")):
        shown = np.where(off, data, np.nan)
        image = ax.imshow(shown, cmap="viridis", interpolation="nearest")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        ticks = np.arange(0, k, max(1, math.ceil(k / 30)))
        ax.set_xticks(ticks, [names[i] for i in ticks], rotation=90, fontsize=7)
        ax.set_yticks(ticks, [names[i] for i in ticks], fontsize=7)
        ax.set_ylabel("true class")
        ax.set_xlabel("class receiving the mass" if data is matrix else "predicted class")
        ax.set_title(f"{name}, off-diagonal", fontsize=10)
    fig.suptitle(f"{title}: off-diagonal Pearson correlation r = {corr:.3f}")
    fig.tight_layout()
    return save_figure(fig, path), corr

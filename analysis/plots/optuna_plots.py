"""Optuna's standard views of a search, drawn per method: the optimisation history, each method's slice and
contour over its own hyper-parameters, the intermediate values with the trials ASHA stopped, and each
method's hyper-parameter importance. They only read the trials (Optuna ``FrozenTrial``s) they are given.

The search space is conditional: ``loss`` picks the method, then ``<method>/<name>`` its hyper-parameters.
Importance over the whole space only says that ``loss`` matters, so every view here works on one method's
trials and that method's own parameters.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from analysis.plots.figure import save_figure
from analysis.plots.report_plots import method_colors

METHOD_PARAM = "loss"


def method_of(trial: Any) -> str:
    return str(trial.params.get(METHOD_PARAM, "?"))


def own_params(trial: Any) -> dict[str, float]:
    """A trial's numeric hyper-parameters of its own method, by short name (``alpha``)."""
    prefix = f"{method_of(trial)}/"
    return {k.removeprefix(prefix): float(v) for k, v in trial.params.items()
            if k.startswith(prefix) and isinstance(v, (int, float)) and not isinstance(v, bool)}


def _complete(trials: Sequence[Any]) -> list[Any]:
    return [t for t in trials if t.state.name == "COMPLETE" and objective_value(t) is not None
            and math.isfinite(objective_value(t))]


def objective_value(trial: Any) -> float | None:
    """The trial's value of the study's first objective (the one that ranks; multi-objective studies have
    several values and no ``value``)."""
    return trial.values[0] if trial.values else None


def plot_optimization_history(trials: Sequence[Any], objective: str, mode: str, path: Path) -> Path | None:
    """Objective value of each completed trial by trial number, coloured by method, and the best so far."""
    done = sorted(_complete(trials), key=lambda t: t.number)
    if not done:
        return None
    colors = method_colors([method_of(t) for t in trials])
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for method, color in colors.items():
        mine = [t for t in done if method_of(t) == method]
        if mine:
            ax.scatter([t.number for t in mine], [objective_value(t) for t in mine], color=color, label=method, s=22)
    values = np.array([objective_value(t) for t in done])
    best = np.maximum.accumulate(values) if mode == "max" else np.minimum.accumulate(values)
    ax.step([t.number for t in done], best, where="post", color="black", lw=1.2, label="best so far")
    ax.set_xlabel("Optuna trial number")
    ax.set_ylabel(f"{objective} ({'higher' if mode == 'max' else 'lower'} is better)")
    ax.set_title("Optimisation history (completed trials)")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_slices(trials: Sequence[Any], objective: str, path: Path) -> Path | None:
    """One panel per (method, own hyper-parameter): the objective against the parameter's value."""
    panels = [(m, p) for m in sorted({method_of(t) for t in _complete(trials)})
              for p in sorted({p for t in _complete(trials) if method_of(t) == m for p in own_params(t)})]
    if not panels:
        return None
    colors = method_colors([method_of(t) for t in trials])
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(4 * cols, 3.2 * rows))
    for i, (method, param) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        mine = [t for t in _complete(trials) if method_of(t) == method and param in own_params(t)]
        ax.scatter([own_params(t)[param] for t in mine], [objective_value(t) for t in mine], color=colors[method], s=22)
        ax.set_xlabel(f"{method}: {param}")
        ax.set_ylabel(objective)
    fig.suptitle("Slice: the objective over each method's own hyper-parameters (completed trials)")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_contours(trials: Sequence[Any], objective: str, path: Path) -> Path | None:
    """For each method with two or more hyper-parameters, the objective over each pair (filled contour of
    the completed trials when there are enough, the trials as points)."""
    panels = []
    for method in sorted({method_of(t) for t in _complete(trials)}):
        mine = [t for t in _complete(trials) if method_of(t) == method]
        names = sorted({p for t in mine for p in own_params(t)})
        panels += [(method, a, b, mine) for i, a in enumerate(names) for b in names[i + 1:]]
    if not panels:
        return None
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.6 * rows))
    for i, (method, a, b, mine) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        pts = [(own_params(t)[a], own_params(t)[b], objective_value(t)) for t in mine if a in own_params(t) and b in own_params(t)]
        x, y, z = (np.array(v) for v in zip(*pts)) if pts else (np.array([]),) * 3
        if len(pts) >= 4 and len(set(x)) > 1 and len(set(y)) > 1:
            try:
                ax.tricontourf(x, y, z, levels=12, cmap="viridis", alpha=0.7)
            except (ValueError, RuntimeError):  # collinear points: the scatter alone
                pass
        sc = ax.scatter(x, y, c=z, cmap="viridis", edgecolors="black", s=26)
        fig.colorbar(sc, ax=ax, label=objective)
        ax.set_xlabel(a)
        ax.set_ylabel(b)
        ax.set_title(method)
    fig.suptitle("Contour: pairs of each method's hyper-parameters")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_intermediate_values(trials: Sequence[Any], objective: str, rungs: Sequence[int], path: Path) -> Path | None:
    """Every trial's reported objective by epoch, coloured by method; an ``x`` where ASHA stopped a trial
    (Optuna: PRUNED), dotted lines at ASHA's rungs."""
    curves = [t for t in trials if t.intermediate_values]
    if not curves:
        return None
    colors = method_colors([method_of(t) for t in trials])
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for t in curves:
        steps = sorted(t.intermediate_values)
        ax.plot(steps, [t.intermediate_values[s] for s in steps], color=colors[method_of(t)], alpha=0.6, lw=1)
        if t.state.name == "PRUNED":
            ax.scatter([steps[-1]], [t.intermediate_values[steps[-1]]], marker="x", color=colors[method_of(t)], s=40)
    for rung in rungs:
        ax.axvline(rung, color="grey", ls=":", lw=0.8)
    for method, color in colors.items():
        ax.plot([], [], color=color, label=method)
    ax.scatter([], [], marker="x", color="black", label="stopped by ASHA")
    ax.set_xlabel("epoch")
    ax.set_ylabel(objective)
    ax.set_title("Intermediate values (dotted: ASHA rungs)")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def method_importances(trials: Sequence[Any], seed: int = 0) -> dict[str, dict[str, float]]:
    """Per method, fANOVA importance of its own hyper-parameters on its completed trials (methods with fewer
    than 3 completed trials, or no hyper-parameter, are left out)."""
    import optuna

    out: dict[str, dict[str, float]] = {}
    for method in sorted({method_of(t) for t in _complete(trials)}):
        mine = [t for t in _complete(trials) if method_of(t) == method]
        prefix = f"{method}/"
        names = sorted({k for t in mine for k in t.params if k.startswith(prefix)})
        if len(mine) < 3 or not names:
            continue
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created in memory" line
        try:
            study = optuna.create_study(direction="minimize")
        finally:
            optuna.logging.set_verbosity(verbosity)
        for t in mine:
            if not all(k in t.params for k in names):
                continue
            study.add_trial(optuna.trial.create_trial(
                params={k: t.params[k] for k in names}, distributions={k: t.distributions[k] for k in names},
                value=objective_value(t)))
        if len(study.trials) < 3:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed))
        out[method] = {k.removeprefix(prefix): float(v) for k, v in found.items()}
    return out


def plot_importances(importances: dict[str, dict[str, float]], path: Path) -> Path | None:
    if not importances:
        return None
    fig = Figure(figsize=(4 * len(importances), 3.2))
    colors = method_colors(list(importances))
    for i, (method, values) in enumerate(sorted(importances.items())):
        ax = fig.add_subplot(1, len(importances), i + 1)
        names = sorted(values, key=values.get)
        ax.barh(names, [values[n] for n in names], color=colors[method])
        ax.set_xlim(0, 1)
        ax.set_xlabel("importance (fANOVA)")
        ax.set_title(method)
    fig.suptitle("Hyper-parameter importance within each method")
    fig.tight_layout()
    return save_figure(fig, path)

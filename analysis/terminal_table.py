"""The basic comparison: each method's best completed trial by the study objective, its hyperparameters and
metrics. Completed only, as in the full report's leaderboard and in ``rerun``: a trial ASHA stopped has its
value from a shorter training, so ranking it beside finished trials would not be a fair comparison."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.core.statuses import TrialStatus
from analysis.core.tables import CONFIG_PREFIX, HPARAM_PREFIX, METHOD
from analysis.leaderboard import Declared, used_params
from analysis.results import read_trials

MODES = ("max", "min")
RANKED_STATUSES = (TrialStatus.COMPLETED,)
TABLE_METRICS = ("acc", "nll", "ece", "aurc")  # the terminal table's columns, val and test, where present


@dataclass
class MethodResult:
    method: str
    trial_id: str
    objective: float
    status: str
    epochs_run: int
    hparams: dict[str, Any]  # loss_params.* and any other config key the study searched, without "config/"
    metrics: dict[str, float]  # val/* and test/* final metrics
    trials: int  # ranked trials of this method


@dataclass
class Report:
    study: str
    objective: str
    mode: str
    results: list[MethodResult]  # best method first
    status_counts: dict[str, int] = field(default_factory=dict)
    unranked: list[str] = field(default_factory=list)  # methods with trials but no completed one

    @property
    def metric_keys(self) -> list[str]:
        keys = {k for r in self.results for k in r.metrics}
        return sorted(keys, key=lambda k: (not k.startswith("val/"), k))


def build_report(study_dir: Path | str, objective: str, mode: str, declared: Declared | None = None) -> Report:
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not allowed; allowed: {', '.join(MODES)}")
    trials = read_trials(study_dir)
    study = (
        str(trials["study"].dropna().iloc[0])
        if "study" in trials and trials["study"].notna().any()
        else Path(study_dir).name
    )
    counts = dict(Counter(trials["status"].fillna("unknown"))) if len(trials) else {}
    if trials.empty:
        return Report(study, objective, mode, [], counts)
    if objective not in trials.columns:
        known = sorted(c for c in trials.columns if c.startswith(("val/", "test/", "train/")))
        raise ValueError(f"objective={objective!r} is not a metric of this study; known: {', '.join(known)}")
    ranked = trials[trials["status"].isin(RANKED_STATUSES) & trials[objective].notna()]
    searched = _searched_columns(trials)
    results = []
    methods = ranked[METHOD] if METHOD in ranked else pd.Series("?", index=ranked.index)
    for method, group in ranked.groupby(methods):
        best = group.sort_values(objective, ascending=(mode == "min"), kind="stable").iloc[0]
        results.append(
            MethodResult(
                method=str(method),
                trial_id=str(best["trial_id"]),
                objective=float(best[objective]),
                status=str(best["status"]),
                epochs_run=int(best["epochs_run"]) if pd.notna(best.get("epochs_run")) else 0,
                hparams=_used(method, {c[len(CONFIG_PREFIX) :]: _plain(best[c]) for c in searched
                                       if pd.notna(best[c])}, declared),
                metrics={
                    c: float(best[c])
                    for c in trials.columns
                    if c.startswith(("val/", "test/")) and _is_number(best[c])
                },
                trials=len(group),
            )
        )
    results.sort(key=lambda r: r.objective, reverse=(mode == "max"))
    tried = set(trials[METHOD].dropna().astype(str)) if METHOD in trials else set()
    return Report(study, objective, mode, results, counts, sorted(tried - {r.method for r in results}))


def _searched_columns(trials: pd.DataFrame) -> list[str]:
    """The method's own hyperparameters and every other config column that varies across the study."""
    cols = []
    for c in sorted(trials.columns):
        if not c.startswith(CONFIG_PREFIX) or c == METHOD:
            continue
        if c.startswith(HPARAM_PREFIX) or trials[c].dropna().astype(str).nunique() > 1:
            cols.append(c)
    return cols


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:.4g}" if value != 0 and (abs(value) >= 1000 or abs(value) < 0.001) else f"{value:.4f}"
    return str(value)


def _used(method: str, hparams: dict[str, Any], declared: Declared | None) -> dict[str, Any]:
    prefix = "loss_params."
    loss = used_params(method, {k.removeprefix(prefix): v for k, v in hparams.items() if k.startswith(prefix)},
                       declared)
    return {k: v for k, v in hparams.items() if not k.startswith(prefix) or k.removeprefix(prefix) in loss}


def _hparams_text(hparams: dict[str, Any]) -> str:
    def short(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    return ", ".join(f"{k.removeprefix('loss_params.')}={short(v)}" for k, v in hparams.items()) or "—"


def _table_rows(report: Report, metrics: list[str]) -> tuple[list[str], list[list[str]]]:
    header = ["rank", "method", "trial", report.objective, "hyperparameters", *metrics]
    rows = [
        [
            str(i),
            r.method,
            r.trial_id,
            fmt(r.objective),
            _hparams_text(r.hparams),
            *(fmt(r.metrics.get(m, float("nan"))) for m in metrics),
        ]
        for i, r in enumerate(report.results, 1)
    ]
    return header, rows


def _summary_metrics(report: Report) -> list[str]:
    keys = set(report.metric_keys)
    return [
        f"{split}/{m}"
        for split in ("val", "test")
        for m in TABLE_METRICS
        if f"{split}/{m}" in keys and f"{split}/{m}" != report.objective
    ]


def format_table(report: Report, metrics: list[str] | None = None) -> str:
    """Plain aligned text for the terminal: one line per method, best first."""
    if not report.results:
        return f"{report.study}: no completed trial with {report.objective} yet"
    header, rows = _table_rows(report, metrics if metrics is not None else _summary_metrics(report))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = {0, 3, *range(5, len(header))}
    lines = []
    for row in [header, *rows]:
        cells = [c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    direction = "higher" if report.mode == "max" else "lower"
    return (
        f"{report.study}: best completed trial per method by {report.objective} ({direction} is better)\n"
        + "\n".join(lines) + ("\n" + _unranked_text(report) if report.unranked else "")
    )


def _unranked_text(report: Report) -> str:
    return f"Not ranked (no completed trial, e.g. every trial stopped early by ASHA): {', '.join(report.unranked)}."

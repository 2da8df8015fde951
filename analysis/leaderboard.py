"""The leaderboard over seeds and the significance of each method against the baselines (CE, LS).

Per method, the best configuration is its completed search trial with the best final value of the study's
first objective (the model that was evaluated on test). Its seeds are the completed reruns of that trial
(``parquet/reruns``, tagged ``source_trial``); without reruns, the search trial itself is the one seed.

Significance of ``method - baseline`` per metric: with >= 2 seeds both have in common (reruns pair on
``config/seed``), the paired t-test over those seeds; with >= 2 seeds each but fewer than 2 in common
(reruns of trials with different seeds), Welch's unpaired t-test over all of them; with one seed, a paired
bootstrap over the test samples of the two models' per-sample outputs (metrics that cannot be computed from
them, R² and probe accuracy, get no test). A metric missing on either side gives no test.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import log_softmax, softmax

from analysis.core.catalogue import CATALOGUE
from analysis.core.registry import HParam, used_hparams
from analysis.core.statuses import TrialStatus
from analysis.core.tables import FINAL_KIND, HPARAM_PREFIX, KIND_TAG, METHOD, SEED, SOURCE_TAG
from analysis.metrics.calibration import ece
from analysis.metrics.selective import DEFAULT_RISK as RISK
from analysis.metrics.selective import RISK_KEY, coverage_at_risk, misclassification_auroc, selective_summary
from analysis.stats import (
    BestSet,
    Comparison,
    Interval,
    best_set,
    bootstrap_indices,
    bootstrap_p_value,
    mean_ci,
    paired_test,
    welch_test,
)

BASELINES = ("ce", "ls")
RERUNS = "reruns"  # MethodSeeds.source of a row over retrained seeds
SEARCH_TRIAL = "search trial"  # ... of a row that is the one search trial


@dataclass(frozen=True)
class MetricSpec:
    key: str
    label: str
    mode: str | None  # "max", "min", or None when neither direction is better (R²)


LEADERBOARD_METRICS = tuple(MetricSpec(m.key("test"), m.label, m.better) for m in CATALOGUE.values())


# method -> the hyperparameters its loss declares (trainables.losses.loss_hparams; the caller passes it in)
Declared = Callable[[str], tuple[HParam, ...]]


def used_params(method: str, params: dict[str, Any], declared: Declared | None = None) -> dict[str, Any]:
    """The hyperparameters ``method`` really used: without the settings its other settings switch off (the
    loss declares them, e.g. MaxSup's hinge margin, which only its prob_hinge form reads). Without
    ``declared``, or for a method it does not know, everything."""
    if declared is None:
        return params
    try:
        hparams = declared(method)
    except ValueError:  # a method this version does not know: show everything
        return params
    return used_hparams(hparams, params)


def best_trials(trials: pd.DataFrame, objective: str, mode: str, top: int = 1) -> pd.DataFrame:
    """The ``top`` completed trials of each method with the best final ``objective``, best first. Ties go to the
    smaller hyperparameter values (the first in an ascending grid, as a grid search's argmax picks), then to the
    table's order."""
    if mode not in ("max", "min"):
        raise ValueError(f"mode={mode!r} is not allowed; allowed: max, min")
    if trials.empty or objective not in trials or METHOD not in trials:
        return trials.iloc[0:0]
    done = trials[(trials["status"] == TrialStatus.COMPLETED) & trials[objective].notna()]
    params = sorted(c for c in done.columns if c.startswith(HPARAM_PREFIX) and pd.api.types.is_numeric_dtype(done[c]))
    ordered = done.sort_values([objective, *params], ascending=[mode == "min", *([True] * len(params))],
                               kind="stable", na_position="last")
    return ordered.groupby(METHOD, sort=False).head(top)


def best_trials_by(trials: pd.DataFrame, objectives: list[tuple[str, str]], top: int = 1) -> pd.DataFrame:
    """The union of ``best_trials`` by each ``(objective, mode)``: a trial several of them choose appears
    once, in the order it was first chosen."""
    chosen = [best_trials(trials, objective, mode, top) for objective, mode in objectives]
    if not chosen:
        return trials.iloc[0:0]
    return pd.concat(chosen).drop_duplicates("trial_id", ignore_index=True)


@dataclass
class MethodSeeds:
    method: str
    trial_id: str  # the search trial holding the best configuration
    objective: float
    hparams: dict[str, Any]
    source: str  # RERUNS or SEARCH_TRIAL
    seeds: pd.DataFrame  # one row per seed: trial_id, config/seed and the metrics


@dataclass
class Leaderboard:
    objective: str
    mode: str
    metrics: list[MetricSpec]
    methods: list[MethodSeeds]  # best first by the objective
    intervals: dict[tuple[str, str], Interval] = field(default_factory=dict)
    # metric key -> the methods marked best: those the paired test over shared seeds does not tell from the
    # best mean, when it tells some other method from it (empty when it separates none)
    best: dict[str, set[str]] = field(default_factory=dict)
    tied: dict[str, BestSet] = field(default_factory=dict)  # metric key (the objective too) -> its best set

    def interval(self, method: str, key: str) -> Interval:
        return self.intervals.get((method, key), Interval(math.nan, math.nan, 0))

    @property
    def shared_seeds(self) -> list[Any]:
        """The seeds every method's row has (none when a row is a single search trial)."""
        if not self.methods or any(m.source != RERUNS or SEED not in m.seeds for m in self.methods):
            return []
        common = set.intersection(*(set(m.seeds[SEED].dropna()) for m in self.methods))
        return sorted(common)

    @property
    def kind(self) -> str:
        """What the rows are: ``final`` (the study's final runs), ``rerun`` or ``trial`` (search trials)."""
        if not self.methods or any(m.source != RERUNS for m in self.methods):
            return "trial"
        kinds = {str(k) for m in self.methods if KIND_TAG in m.seeds for k in m.seeds[KIND_TAG].dropna()}
        return FINAL_KIND if kinds == {FINAL_KIND} else "rerun"


def seed_values(m: MethodSeeds, key: str) -> dict[Any, float]:
    """``{seed: value}`` of ``key`` over a method's row (each seed once; a row without seeds: one entry)."""
    if key not in m.seeds:
        return {}
    rows = m.seeds.drop_duplicates(SEED, keep="last") if SEED in m.seeds else m.seeds
    seeds = rows[SEED] if SEED in rows else pd.Series(range(len(rows)), index=rows.index)
    values = pd.to_numeric(rows[key], errors="coerce")
    return {s: float(v) for s, v in zip(seeds, values) if pd.notna(v)}


def build_leaderboard(
    trials: pd.DataFrame,
    reruns: pd.DataFrame,
    objective: str,
    mode: str,
    metrics: tuple[MetricSpec, ...] = LEADERBOARD_METRICS,
    declared: Declared | None = None,
) -> Leaderboard:
    chosen = best_trials(trials, objective, mode)
    methods = []
    for _, row in chosen.iterrows():
        seeds = _rerun_rows(reruns, str(row["trial_id"]))
        source = RERUNS
        if seeds.empty:
            seeds, source = row.to_frame().T.reset_index(drop=True), SEARCH_TRIAL
        hparams = used_params(str(row[METHOD]), {
            k.removeprefix(HPARAM_PREFIX): _plain(v)
            for k, v in row.items()
            if k.startswith(HPARAM_PREFIX) and _present(v)
        }, declared)
        methods.append(MethodSeeds(str(row[METHOD]), str(row["trial_id"]), float(row[objective]), hparams,
                                   source, seeds))
    present = [m for m in metrics if any(m.key in s.seeds for s in methods)]
    board = Leaderboard(objective, mode, present, methods)
    columns = [(objective, mode), *((spec.key, spec.mode) for spec in present if spec.key != objective)]
    for key, better in columns:
        for m in methods:
            board.intervals[(m.method, key)] = mean_ci(np.fromiter(seed_values(m, key).values(), np.float64))
        if better is None:
            continue
        tied = best_set({m.method: seed_values(m, key) for m in methods}, better)
        board.tied[key] = tied
        board.best[key] = set(tied.tied) if tied.decided(len(methods)) else set()
    return board


def _rerun_rows(reruns: pd.DataFrame, source_trial: str) -> pd.DataFrame:
    """The completed reruns of ``source_trial``, each seed once: its final runs when it has some (the seeds every
    method shares; a user's reruns add seeds of one method's choice, which would unpair them)."""
    if reruns.empty or SOURCE_TAG not in reruns:
        return reruns.iloc[0:0]
    rows = reruns[(reruns[SOURCE_TAG].astype(str) == source_trial) & (reruns["status"] == TrialStatus.COMPLETED)]
    if KIND_TAG in rows and (rows[KIND_TAG] == FINAL_KIND).any():
        rows = rows[rows[KIND_TAG] == FINAL_KIND]
    if SEED not in rows:
        return rows
    return rows.drop_duplicates(SEED, keep="last").sort_values(SEED, kind="stable").reset_index(drop=True)


# -- significance -------------------------------------------------------------------------------------
def _nll_per_sample(c: dict[str, np.ndarray]) -> np.ndarray:
    z = c["logits"].astype(np.float64)
    return -log_softmax(z, axis=1)[np.arange(len(z)), c["label"].astype(np.int64)]


SAMPLE_METRICS: dict[str, Callable[[dict[str, np.ndarray]], float]] = {
    "test/acc": lambda c: float(c["correct"].mean()),
    "test/nll": lambda c: float(c["nll"].mean()),
    "test/ece": lambda c: ece(c["msp"], c["correct"]),
    "test/ece_ts": lambda c: ece(c["msp_ts"], c["correct"]),
    "test/aurc": lambda c: selective_summary(c["msp"], c["correct"], risk=RISK)["aurc"],
    "test/aurc_lognorm": lambda c: selective_summary(c["lognorm"], c["correct"], risk=RISK)["aurc"],
    f"test/{RISK_KEY}": lambda c: coverage_at_risk(c["msp"], c["correct"], RISK),
    "test/auroc": lambda c: misclassification_auroc(c["msp"], c["correct"]),
}


def sample_columns(samples: dict[str, np.ndarray], temperature: float = 1.0) -> dict[str, np.ndarray]:
    """The per-sample arrays the bootstrap metrics need, from a samples Parquet file's columns."""
    label = samples["label"].astype(np.int64)
    out = {"label": label, "correct": samples["pred"].astype(np.int64) == label,
           "msp": samples["msp"].astype(np.float64), "lognorm": samples["lognorm"].astype(np.float64)}
    if "logits" in samples:
        z = samples["logits"].astype(np.float64)
        out["logits"] = z
        out["nll"] = _nll_per_sample({"logits": z, "label": label})
        t = temperature if math.isfinite(temperature) and temperature > 0 else 1.0
        out["msp_ts"] = softmax(z / t, axis=1).max(axis=1)
    return out


class BootstrapCache:
    """Per-model bootstrap distributions of each metric on shared resample indices, computed once."""

    def __init__(self, resamples: int = 500, seed: int = 0) -> None:
        self.resamples = resamples
        self.seed = seed
        self._indices: dict[int, np.ndarray] = {}
        self._values: dict[tuple[str, str], tuple[float, np.ndarray]] = {}

    def values(self, model: str, columns: dict[str, np.ndarray], key: str) -> tuple[float, np.ndarray]:
        if (model, key) not in self._values:
            n = len(columns["label"])
            idx = self._indices.setdefault(n, bootstrap_indices(n, self.resamples, self.seed))
            fn = SAMPLE_METRICS[key]
            observed = fn(columns)
            dist = np.array([fn({k: v[i] for k, v in columns.items()}) for i in idx])
            self._values[(model, key)] = (observed, dist)
        return self._values[(model, key)]


def significance(
    board: Leaderboard,
    baseline: str,
    load_samples: Callable[[MethodSeeds], dict[str, np.ndarray] | None],
    cache: BootstrapCache | None = None,
) -> dict[tuple[str, str], Comparison]:
    """``(method, metric) -> Comparison`` of each other method against ``baseline``; empty when the study
    has no such method. ``load_samples`` returns a method's sample columns (see ``sample_columns``) or None."""
    base = next((m for m in board.methods if m.method == baseline), None)
    if base is None:
        return {}
    cache = cache or BootstrapCache()
    out: dict[tuple[str, str], Comparison] = {}
    base_samples: dict[str, np.ndarray] | None | bool = False  # False: not loaded yet
    for m in board.methods:
        if m.method == baseline:
            continue
        common = _common_seeds(m.seeds, base.seeds)
        for spec in board.metrics:
            if spec.key not in m.seeds or spec.key not in base.seeds:
                continue
            if len(common) >= 2:
                a = _by_seed(m.seeds, spec.key).reindex(common)
                b = _by_seed(base.seeds, spec.key).reindex(common)
                out[(m.method, spec.key)] = paired_test(a.to_numpy(float), b.to_numpy(float), "t-test")
                continue
            if len(m.seeds) >= 2 and len(base.seeds) >= 2:
                out[(m.method, spec.key)] = welch_test(_values(m.seeds, spec.key), _values(base.seeds, spec.key))
                continue
            if spec.key not in SAMPLE_METRICS:
                continue
            if base_samples is False:
                base_samples = load_samples(base)
            mine = load_samples(m)
            if base_samples is None or mine is None or len(mine["label"]) != len(base_samples["label"]) \
                    or not np.array_equal(mine["label"], base_samples["label"]):
                continue
            obs_a, dist_a = cache.values(m.trial_id, mine, spec.key)
            obs_b, dist_b = cache.values(base.trial_id, base_samples, spec.key)
            diff = obs_a - obs_b
            out[(m.method, spec.key)] = Comparison(diff, bootstrap_p_value(diff, dist_a - dist_b),
                                                   "paired bootstrap", cache.resamples)
    return out


def _common_seeds(a: pd.DataFrame, b: pd.DataFrame) -> list[Any]:
    if SEED not in a or SEED not in b or len(a) < 2 or len(b) < 2:
        return []
    return sorted(set(a[SEED].dropna()) & set(b[SEED].dropna()))


def _values(rows: pd.DataFrame, key: str) -> np.ndarray:
    return pd.to_numeric(rows[key], errors="coerce").to_numpy(np.float64)


def _by_seed(rows: pd.DataFrame, key: str) -> pd.Series:
    frame = rows.drop_duplicates(SEED, keep="last")
    return pd.to_numeric(frame.set_index(SEED)[key], errors="coerce")


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))

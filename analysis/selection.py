"""Selection noise: which configurations of a method the data cannot tell from the one the study chose.

A method's choice is its completed search trial with the best objective (``best_trials``). Each other
completed trial of the method is tested against it, and is *indistinguishable* when the test gives
``p >= alpha``:

- ``PAIRED``: per-seed values of the objective exist (a trial of ``seeds_per_trial >= 2`` records each seed's
  under ``seed<i>/<key>``; member ``i`` of a trial with seed ``s`` trained with seed ``s·n + i``), and the two
  trials share at least 2 seeds: the paired t-test over them; sharing fewer, Welch's t-test over each one's
  seeds.
- ``SPREAD``: one value per trial: the noise of a single trial's value is estimated by the seed spread of the
  final runs (and reruns) (the pooled standard deviation ``s`` of the objective over each final configuration's seeds,
  ``df`` degrees of freedom; the method's own, else all methods' together), and the difference is tested by
  ``t = |v_j - v_c| / (s · sqrt(1/n_j + 1/n_c))`` with ``df`` degrees of freedom.
- ``NONE``: neither: nothing can be said (the choice is not marked either way).

The set's range of each headline test metric (its trials' own test values) says what the choice is worth: a
set of three whose test accuracies span 0.84-0.86 means "chosen for accuracy" picked one of three.

``selection_noise(trials, reruns, objective, mode)`` is the entry point; ``indistinguishable`` is the test on
any table of per-seed values, for callers that choose per seed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.core.catalogue import HEADLINE
from analysis.core.statuses import TrialStatus
from analysis.core.tables import CONFIG_PREFIX, METHOD, SEED, SOURCE_TAG
from analysis.leaderboard import best_trials
from analysis.stats import ALPHA, paired_test, welch_test

PAIRED = "paired over shared seeds"
SPREAD = "from the final runs' seed spread"
NONE = "no seed spread to judge it"
SEEDS_PER_TRIAL = f"{CONFIG_PREFIX}seeds_per_trial"
_MEMBER = re.compile(r"^seed(\d+)/(.+)$")


@dataclass(frozen=True)
class Spread:
    """The pooled standard deviation of a value over seeds, with its degrees of freedom."""

    sd: float
    df: int


@dataclass
class SelectionNoise:
    method: str
    objective: str
    chosen: str  # trial id
    members: tuple[str, ...]  # the indistinguishable trials, the chosen one first, then by objective
    candidates: int  # completed trials of the method with the objective
    basis: str  # PAIRED, SPREAD or NONE
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # metric -> (min, max) over members

    @property
    def significant(self) -> bool | None:
        """Whether the choice is clear (no other trial indistinguishable); None when it cannot be judged."""
        if self.candidates == 1:
            return True
        if self.basis == NONE:
            return None
        return len(self.members) == 1

    def summary(self) -> str:
        """``1 of 5`` (a clear choice), ``≈3 of 5`` (three indistinguishable), ``? of 5`` (cannot tell)."""
        if self.significant is None:
            return f"? of {self.candidates}"
        return f"{'' if self.significant else '≈'}{len(self.members)} of {self.candidates}"


def per_seed_values(trials: pd.DataFrame, key: str) -> pd.DataFrame:
    """``trial_id, seed, value`` of each seed of each trial that recorded per-seed values of ``key``
    (``seed<i>/<key>`` columns); empty when none did."""
    members = sorted((int(m.group(1)), c) for c in trials.columns
                     if (m := _MEMBER.match(str(c))) and m.group(2) == key)
    if not members or trials.empty:
        return pd.DataFrame(columns=["trial_id", "seed", "value"])
    n = len(members)
    rows = []
    for _, row in trials.iterrows():
        per = row.get(SEEDS_PER_TRIAL, n)
        per = int(per) if pd.notna(per) else n
        base = row.get(SEED)
        for i, col in members:
            value = row[col]
            if pd.isna(value):
                continue
            seed = int(base) * per + i if pd.notna(base) else i
            rows.append((str(row["trial_id"]), seed, float(value)))
    return pd.DataFrame(rows, columns=["trial_id", "seed", "value"])


def final_spread(reruns: pd.DataFrame, key: str, method: str | None = None) -> Spread | None:
    """The pooled seed standard deviation of ``key`` over the completed final runs (and any other reruns) of
    each configuration (of ``method``, or of every method), each (configuration, seed) once; None with no
    configuration of 2 seeds."""
    if reruns.empty or key not in reruns or SOURCE_TAG not in reruns:
        return None
    rows = reruns[reruns["status"] == TrialStatus.COMPLETED]
    if method is not None and METHOD in rows:
        rows = rows[rows[METHOD].astype(str) == method]
    if SEED in rows:
        rows = rows.drop_duplicates([SOURCE_TAG, SEED], keep="last")
    squares, df = 0.0, 0
    for _, group in rows.groupby(rows[SOURCE_TAG].astype(str)):
        x = pd.to_numeric(group[key], errors="coerce").to_numpy(np.float64)
        x = x[np.isfinite(x)]
        if len(x) >= 2:
            squares += float(((x - x.mean()) ** 2).sum())
            df += len(x) - 1
    return Spread(math.sqrt(squares / df), df) if df else None


def spread_p_value(a: float, b: float, spread: Spread, n_a: int = 1, n_b: int = 1) -> float:
    """Two-sided p-value of ``a - b`` for two means of ``n_a`` and ``n_b`` seeds, each seed's value with the
    standard deviation ``spread.sd`` (``spread.df`` degrees of freedom)."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.nan
    se = spread.sd * math.sqrt(1 / n_a + 1 / n_b)
    if se == 0:
        return 1.0 if a == b else 0.0
    return float(2 * sps.t.sf(abs(a - b) / se, spread.df))


def p_values(values: pd.DataFrame, chosen: str, per_seed: pd.DataFrame | None = None,
             spread: Spread | None = None) -> tuple[dict[str, float], str]:
    """The two-sided p-value of each other trial of ``values`` (``trial_id``, ``value``: one row per trial, its
    value over all its seeds) against ``chosen`` (NaN: the values are not finite), and the basis of the tests.
    ``per_seed`` (``trial_id, seed, value``) gives the per-seed test; else ``spread`` the test of single values. A
    trial that cannot be judged (per-seed values for ``chosen`` only, and no spread) has no entry."""
    by_trial = values.set_index(values["trial_id"].astype(str))["value"].astype(float)
    seeds: dict[str, pd.Series] = {}
    if per_seed is not None and not per_seed.empty:
        for trial, group in per_seed.groupby(per_seed["trial_id"].astype(str)):
            seeds[trial] = group.drop_duplicates("seed", keep="last").set_index("seed")["value"].astype(float)
    mine = seeds.get(chosen)
    if mine is not None and len(mine) >= 2:
        basis = PAIRED
    elif spread is not None:
        basis = SPREAD
    else:
        return {}, NONE
    out = {}
    for trial in by_trial.index:
        if trial == chosen:
            continue
        theirs = seeds.get(trial)
        if basis == PAIRED and theirs is not None and len(theirs) >= 2:
            shared = sorted(set(mine.index) & set(theirs.index))
            test = (paired_test(theirs[shared].to_numpy(), mine[shared].to_numpy()) if len(shared) >= 2
                    else welch_test(theirs.to_numpy(), mine.to_numpy()))
            out[trial] = test.p_value
        elif spread is not None:
            n_mine = len(mine) if mine is not None else 1
            n_theirs = len(theirs) if theirs is not None else 1
            out[trial] = spread_p_value(float(by_trial[trial]), float(by_trial[chosen]), spread, n_theirs, n_mine)
    return out, basis


def indistinguishable(values: pd.DataFrame, chosen: str, per_seed: pd.DataFrame | None = None,
                      spread: Spread | None = None, alpha: float = ALPHA) -> tuple[list[str], str]:
    """The trials of ``values`` that cannot be told from ``chosen`` (``p_values``' p >= ``alpha``, or NaN),
    ``chosen`` first, and the basis of the judgement."""
    ps, basis = p_values(values, chosen, per_seed, spread)
    if basis == NONE:
        return [chosen], NONE
    return [chosen, *(t for t, p in ps.items() if not (math.isfinite(p) and p < alpha))], basis


def selection_noise(trials: pd.DataFrame, reruns: pd.DataFrame, objective: str, mode: str,
                    metrics: tuple[str, ...] = HEADLINE, alpha: float = ALPHA) -> dict[str, SelectionNoise]:
    """Per method: the trials indistinguishable from its chosen one by ``objective`` (see the module's
    docstring), and the range of each of ``metrics`` over them."""
    chosen = best_trials(trials, objective, mode)
    if chosen.empty:
        return {}
    done = trials[(trials["status"] == TrialStatus.COMPLETED) & trials[objective].notna()]
    per_seed = per_seed_values(done, objective)
    study_spread = final_spread(reruns, objective)
    out = {}
    for _, row in chosen.iterrows():
        method, trial = str(row[METHOD]), str(row["trial_id"])
        group = done[done[METHOD].astype(str) == method]
        group = group.sort_values(objective, ascending=(mode == "min"), kind="stable")
        values = pd.DataFrame({"trial_id": group["trial_id"].astype(str), "value": group[objective].astype(float)})
        mine = per_seed[per_seed["trial_id"].isin(values["trial_id"])]
        members, basis = indistinguishable(values, trial, mine, final_spread(reruns, objective, method)
                                           or study_spread, alpha)
        order = {t: i for i, t in enumerate(values["trial_id"])}
        members = [trial, *sorted(members[1:], key=order.__getitem__)]
        rows = group.set_index(group["trial_id"].astype(str)).loc[members]
        ranges = {}
        for key in metrics:
            if key in rows:
                x = pd.to_numeric(rows[key], errors="coerce").dropna()
                if len(x):
                    ranges[key] = (float(x.min()), float(x.max()))
        out[method] = SelectionNoise(method, objective, trial, tuple(members), len(group), basis, ranges)
    return out

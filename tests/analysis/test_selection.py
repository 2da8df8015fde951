"""Selection noise on hand-built tables: a flat grid leaves every configuration indistinguishable from the chosen
one, a clear winner leaves it alone; per-seed values pair over shared seeds, single values use the final runs'
seed spread."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis.selection import (
    NONE,
    PAIRED,
    SPREAD,
    Spread,
    final_spread,
    indistinguishable,
    per_seed_values,
    selection_noise,
    spread_p_value,
)

SEED_NOISE = np.array([0.004, -0.003, 0.001, -0.002, 0.000])  # shared by every configuration's seeds


def grid(offsets: list[float]) -> pd.DataFrame:
    """A method's search trials of ``seeds_per_trial = 5`` whose per-seed val/acc is 0.85 + offset + seed noise
    (configuration k's noise is SEED_NOISE rotated by k: the same spread, paired differently), every trial with
    the same seeds (seed 0 of each group)."""
    rows = []
    for k, offset in enumerate(offsets):
        per_seed = 0.85 + offset + np.roll(SEED_NOISE, k)
        rows.append({"trial_id": f"t{k}", "status": "completed", "config/loss": "ls", "config/seed": 0,
                     "config/seeds_per_trial": len(SEED_NOISE), "config/loss_params.alpha": 0.1 * (k + 1),
                     "val/acc": float(per_seed.mean()), "test/acc": 0.84 + offset,
                     **{f"seed{i}/val/acc": float(v) for i, v in enumerate(per_seed)}})
    return pd.DataFrame(rows)


def test_a_flat_grid_leaves_every_configuration_indistinguishable():
    trials = grid([0.0, 0.0005, -0.0005, 0.001, -0.001])
    [noise] = selection_noise(trials, pd.DataFrame(), "val/acc", "max").values()
    assert noise.basis == PAIRED and noise.candidates == 5
    assert sorted(noise.members) == [f"t{k}" for k in range(5)] and noise.significant is False
    assert noise.members[0] == trials.loc[trials["val/acc"].idxmax(), "trial_id"]
    assert noise.summary() == "≈5 of 5"
    low, high = noise.ranges["test/acc"]
    assert (low, high) == (trials["test/acc"].min(), trials["test/acc"].max())


def test_a_clear_winner_stands_alone():
    trials = grid([0.05, 0.0, 0.001, -0.001])
    [noise] = selection_noise(trials, pd.DataFrame(), "val/acc", "max").values()
    assert noise.members == ("t0",) and noise.significant is True and noise.summary() == "1 of 4"
    assert noise.ranges["test/acc"] == (0.89, 0.89)


def test_min_mode_chooses_the_lowest():
    trials = grid([0.05, 0.0, 0.001])
    [noise] = selection_noise(trials, pd.DataFrame(), "val/acc", "min").values()
    assert noise.chosen == trials.loc[trials["val/acc"].idxmin(), "trial_id"]
    assert set(noise.members) <= {"t1", "t2"} and "t0" not in noise.members


def test_per_seed_values_name_each_member_seed():
    trials = grid([0.0, 0.01])
    long = per_seed_values(trials, "val/acc")
    assert len(long) == 10 and sorted(set(long["seed"])) == list(range(5))  # seed 0 · 5 + i
    assert math.isclose(long[long["trial_id"] == "t1"]["value"].mean(), trials["val/acc"].iloc[1])


def single_trials(values: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"trial_id": [f"t{k}" for k in range(len(values))], "status": "completed",
                         "config/loss": "ls", "val/acc": values, "test/acc": [v - 0.01 for v in values]})


def final_runs(per_config: dict[str, list[float]]) -> pd.DataFrame:
    rows = [{"trial_id": f"final-{t}-seed{s}", "status": "completed", "tag/kind": "final", "tag/source_trial": t,
             "config/loss": "ls", "config/seed": s, "val/acc": v}
            for t, values in per_config.items() for s, v in enumerate(values)]
    return pd.DataFrame(rows)


def test_single_trials_use_the_final_runs_seed_spread():
    finals = final_runs({"t0": [0.85, 0.86, 0.84]})  # sd 0.01, 2 degrees of freedom
    assert final_spread(finals, "val/acc") == Spread(pytest.approx(0.01), 2)
    trials = single_trials([0.90, 0.895, 0.80])  # 0.005 is noise at sd 0.01; 0.10 is not
    [noise] = selection_noise(trials, finals, "val/acc", "max").values()
    assert noise.basis == SPREAD and noise.members == ("t0", "t1")
    # by hand: t = 0.005 / (0.01 · √2), 2 degrees of freedom
    assert spread_p_value(0.90, 0.895, Spread(0.01, 2)) == pytest.approx(2 * sps.t.sf(0.005 / (0.01 * 2 ** 0.5), 2))


def test_a_seed_counted_twice_does_not_narrow_the_spread():
    once = final_spread(final_runs({"t0": [0.85, 0.86, 0.84]}), "val/acc")
    twice = final_spread(pd.concat([final_runs({"t0": [0.85, 0.86, 0.84]}),
                                    final_runs({"t0": [0.85]})], ignore_index=True), "val/acc")
    assert once == twice


def test_without_any_seed_spread_nothing_is_judged():
    trials = single_trials([0.90, 0.80])
    [noise] = selection_noise(trials, pd.DataFrame(), "val/acc", "max").values()
    assert noise.basis == NONE and noise.significant is None and noise.summary() == "? of 2"
    members, basis = indistinguishable(trials.assign(value=trials["val/acc"]), "t0")
    assert (members, basis) == (["t0"], NONE)


def test_p_values_of_single_values_against_a_hand_computed_t_test():
    from analysis.selection import SPREAD, Spread, p_values

    values = pd.DataFrame({"trial_id": ["a", "b", "c"], "value": [0.90, 0.896, 0.88]})
    ps, basis = p_values(values, "a", None, Spread(0.002, 4))
    assert basis == SPREAD and set(ps) == {"b", "c"}
    for trial, v in (("b", 0.896), ("c", 0.88)):
        t = abs(v - 0.90) / (0.002 * math.sqrt(2))
        assert ps[trial] == pytest.approx(2 * sps.t.sf(t, 4))
    assert ps["b"] > 0.05 > ps["c"]

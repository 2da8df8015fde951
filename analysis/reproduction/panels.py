"""The document's panels beside the table: selective classification (label smoothing and logit
normalisation), selection noise (how sure each choice is) and where our numbers and the paper's part."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analysis.core.tables import HPARAM_PREFIX
from analysis.reproduction.parts import (
    FROM_TRIALS,
    Part,
    Study,
    chosen_params,
    chosen_trial,
    final_runs,
    grid_trials,
    num,
    params_of,
    tested_runs,
)
from analysis.reproduction.protocol import NOT_RUN, Protocol, choice, chosen_in
from analysis.reproduction.verdicts import RowResult, fmt_p, sample
from analysis.selection import NONE, PAIRED, SPREAD, final_spread, p_values
from analysis.stats import ALPHA, Interval, mean_ci, welch_interval


def fmt_interval(ours: Interval | None) -> str:
    if ours is None:
        return NOT_RUN
    if ours.n == 0:
        return "no values"
    if math.isnan(ours.half_width):
        return f"{ours.mean:.4f} (n = {ours.n})"
    return f"{ours.mean:.4f} ± {ours.half_width:.4f} (n = {ours.n})"


def fmt_difference(diff: Interval | None) -> str:
    if diff is None or diff.n == 0:
        return NOT_RUN
    if math.isnan(diff.half_width):
        return f"{diff.mean:+.4f} (1 seed)"
    return f"{diff.mean:+.4f} ± {diff.half_width:.4f}"


def _empty(part: Part) -> str:
    return "not finished yet" if part.present else NOT_RUN


# -- selective classification ----------------------------------------------------------------------------
def grid_by_value(part: Part, method: str, param: str | None) -> pd.DataFrame:
    """The part's completed grid trials of ``method`` over all its studies, one row per value of ``param``
    (the means over seeds; ``n`` = how many)."""
    frames = [grid_trials(s, method) for s in part.collected]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame()
    trials = pd.concat(frames, ignore_index=True)
    key = param if param and param in trials else None
    cols = ["test/acc", "test/aurc", "test/aurc_lognorm", "test/lognorm_p", "test/lognorm_fallback"]
    for c in cols:
        trials[c] = pd.to_numeric(trials[c], errors="coerce") if c in trials else math.nan
    if key is None:
        trials["_value"] = 0.0
        key = "_value"
    grouped = trials.groupby(key, sort=True)
    out = grouped[cols].mean()
    out["n"] = grouped.size()
    out["p_values"] = grouped["test/lognorm_p"].agg(lambda s: sorted(set(s.dropna())))
    return out.reset_index().rename(columns={key: "value"})


def aurc_panel(protocol: Protocol, parts: dict[str, Part]) -> list[str]:
    spec = protocol.spec.get("aurc_panel")
    if not spec:
        return []
    lines = ["## Selective classification: label smoothing and logit normalisation", ""]
    if "selective" in protocol.spec:
        lines += [f"The claim: {protocol.spec['selective']['cite'].strip()}.", ""]
    lines += ["The grid trials (trained on the training split without its validation part; one per value and seed, "
              "means over seeds when there are several); AURC (lower is better) of the max softmax probability "
              "(`test/aurc`) and of the logit-normalised score (`test/aurc_lognorm`, p chosen on validation; "
              "fallback 1 = no p helped on validation, MSP used).", ""]
    base_spec, ls_spec = spec["baseline"], spec["smoothed"]
    param = HPARAM_PREFIX + ls_spec.get("param", "loss_params.alpha").removeprefix("loss_params.")
    base = grid_by_value(parts[base_spec["part"]], base_spec["method"], None)
    smooth = grid_by_value(parts[ls_spec["part"]], ls_spec["method"], param)
    lines += ["| method | α | seeds | test acc | AURC (MSP) | AURC (logit-norm.) | logit-norm. − MSP | p | fallback |",
              "|---|---|---|---|---|---|---|---|---|"]
    if base.empty:
        lines.append(f"| {base_spec['method']} | 0 | {_empty(parts[base_spec['part']])} | | | | | | |")
    for _, row in base.iterrows():
        lines.append(_aurc_line(base_spec["method"], "0", row))
    if smooth.empty:
        lines.append(f"| {ls_spec['method']} | grid | {_empty(parts[ls_spec['part']])} | | | | | | |")
    for _, row in smooth.iterrows():
        lines.append(_aurc_line(ls_spec["method"], f"{row['value']:g}", row))
    lines += [""]
    metric, mode = choice(protocol, chosen_in(protocol, ls_spec))
    lines += [f"The tested runs (the configuration chosen by `{metric}` ({mode}); mean ± 95 % half-width over "
              "seeds; the difference is taken seed by seed):", "",
              "| method | chosen | seeds | test acc | AURC (MSP) | AURC (logit-norm.) | logit-norm. − MSP |",
              "|---|---|---|---|---|---|---|"]
    for s in (base_spec, ls_spec):
        runs = tested_runs(parts[s["part"]], s["method"], choice(protocol, chosen_in(protocol, s)))
        if runs.empty:
            lines.append(f"| {s['method']} | | {NOT_RUN} | | | | |")
            continue
        raw, norm = sample(runs, "test/aurc"), sample(runs, "test/aurc_lognorm")
        diff = (np.array(norm.values) - np.array(raw.values)) if norm.n == raw.n else np.array([])
        lines.append(f"| {s['method']} | {chosen_params(runs)} | {len(runs)} | "
                     f"{fmt_interval(sample(runs, 'test/acc').interval)} | {fmt_interval(raw.interval)} | "
                     f"{fmt_interval(norm.interval)} | {fmt_interval(mean_ci(diff))} |")
    lines += ["", "Checks on the grid trials (directions over the grid, not significance):", ""]
    if base.empty or smooth.empty:
        missing = [f"{s['part']} {_empty(parts[s['part']])}" for s, f in ((base_spec, base), (ls_spec, smooth))
                   if f.empty]
        lines.append(f"- not decidable yet: part {', part '.join(missing)}")
        return lines + [""]
    ce_aurc = float(base.iloc[0]["test/aurc"])
    points = [(r["value"], r["test/aurc"], r["test/aurc_lognorm"]) for _, r in smooth.iterrows()]
    above = [a for a, r, _ in points if r > ce_aurc]
    lines.append(f"- LS raises AURC against CE ({ce_aurc:.4f}): at {len(above)} of {len(points)} values of α "
                 f"({', '.join(f'{a:g}' for a in above) or 'none'})")
    rises = sum(1 for (_, r0, _), (_, r1, _) in zip(points, points[1:]) if r1 > r0)
    lines.append(f"- AURC of LS grows with α: {rises} of {len(points) - 1} steps up the grid raise it")
    helped = [a for a, r, n in points if n < r]
    lines.append(f"- logit normalisation lowers LS's AURC at {len(helped)} of {len(points)} values of α")
    delta = float(base.iloc[0]["test/aurc_lognorm"]) - ce_aurc
    lines.append(f"- for CE it changes AURC by {delta:+.4f} (logit-normalised − MSP)")
    return lines + [""]


def _aurc_line(method: str, alpha: str, row: pd.Series) -> str:
    acc, raw, norm = num(row, "test/acc"), num(row, "test/aurc"), num(row, "test/aurc_lognorm")
    fallback = num(row, "test/lognorm_fallback")
    ps = row["p_values"]
    p = "–" if not ps else (f"{ps[0]:g}" if len(ps) == 1 else "varies")
    return (f"| {method} | {alpha} | {int(row['n'])} | {acc:.4f} | {raw:.4f} | {norm:.4f} | {norm - raw:+.4f} | "
            f"{p} | {'–' if math.isnan(fallback) else f'{fallback:g}'} |")


# -- selection noise -------------------------------------------------------------------------------------
def _value_key(row: pd.Series) -> str:
    return ", ".join(f"{k} = {v:g}" for k, v in params_of(row).items()) or "–"


def selection_noise(parts: list[Study], method: str, chosen: tuple[str, str]) -> dict[str, Any] | None:
    """How sure the choice of ``method``'s configuration by ``chosen`` (metric, mode) is, over the studies of a
    part (one per seed, or one), judged as every study's choice is (``analysis.selection``): each grid value
    against the value best on the mean over seeds, paired over the seeds (every value of a seed shares its
    split and training seed); with one seed per value, by the seed spread of the chosen configuration's final
    runs. Returns None without two grid values."""
    metric, mode = chosen
    sign = 1 if mode == "max" else -1
    rows = []
    for study in parts:
        trials = grid_trials(study, method)
        if trials.empty or metric not in trials:
            continue
        best = chosen_trial(study, method, chosen)
        for _, t in trials.iterrows():
            rows.append({"seed": study.seed if study.seed is not None else 0, "value": _value_key(t),
                         "order": tuple(params_of(t).values()), "val": num(t, metric),
                         "acc": num(t, "test/acc"), "ece": num(t, "test/ece"),
                         "chosen": best is not None and t["trial_id"] == best["trial_id"]})
    table = pd.DataFrame(rows)
    if table.empty or table["value"].nunique() < 2:
        return None
    wide = table.pivot_table(index="seed", columns="value", values="val")
    seeds = len(wide)
    means = wide.mean().sort_index(key=lambda idx: idx.map(dict(zip(table["value"], table["order"]))))
    best_value = (means * sign).idxmax()
    per_seed = table.rename(columns={"value": "trial_id", "val": "value"})[["trial_id", "seed", "value"]]
    # one seed per value: the noise of a value is the chosen configuration's final runs' seed spread
    spread = None if seeds >= 2 else final_spread(pd.concat([final_runs(s, method, chosen) for s in parts]), metric)
    ps, basis = p_values(pd.DataFrame({"trial_id": means.index, "value": means.to_numpy()}), best_value,
                         per_seed if seeds >= 2 else None, spread)
    if basis == PAIRED:
        how = f"paired t-test over {seeds} seeds of {metric}, each value against {best_value} (the best mean)"
    elif basis == SPREAD:
        how = (f"one seed per value: the seed spread is the chosen configuration's final runs' (SD of {metric} = "
               f"{spread.sd:.4f}, {spread.df} degrees of freedom), and each value's difference to the best is "
               "tested with it")
    else:
        how = "one seed per value and no final runs with validation metrics: the noise cannot be estimated"
    out_rows = []
    for value in means.index:
        mine = table[table["value"] == value]
        p = ps.get(value, math.nan)
        out_rows.append({"value": value, "mean": float(means[value]), "chosen": int(mine["chosen"].sum()),
                         "diff": float(means[value] - means[best_value]), "p": p,
                         "same": value == best_value or (basis != NONE and not p < ALPHA),
                         "acc": float(mine["acc"].mean()), "ece": float(mine["ece"].mean())})
    kept = [r for r in out_rows if r["same"]]
    return {"metric": metric, "mode": mode, "seeds": seeds, "best": best_value, "how": how, "rows": out_rows,
            "acc_range": (min(r["acc"] for r in kept), max(r["acc"] for r in kept)),
            "ece_range": (min(r["ece"] for r in kept), max(r["ece"] for r in kept))}


def noise_section(protocol: Protocol, parts: dict[str, Part]) -> list[str]:
    lines = ["## Selection noise", "",
             "How sure each choice of a parameter is: for each part's method with a grid and each block's objective, "
             "the grid values whose validation metric cannot be told apart from the best one's, and what the test "
             "metrics of their grid trials span. A choice among indistinguishable values is a draw, and the row's "
             "numbers could have been any of that range.", ""]
    seen = set()
    for row in protocol.spec["rows"]:
        if row.get("runs") == FROM_TRIALS:
            continue
        chosen = choice(protocol, chosen_in(protocol, row))
        key = (row["part"], row["method"], chosen)
        if key in seen:
            continue
        seen.add(key)
        part = parts[row["part"]]
        if not part.present:
            lines += [f"- {row['method']} ({row['part']}), by `{chosen[0]}`: {NOT_RUN}"]
            continue
        noise = selection_noise(part.collected, row["method"], chosen)
        if noise is None:
            continue
        kept = [r["value"] for r in noise["rows"] if r["same"]]
        marked = "the choice is clear" if len(kept) == 1 else f"not significant: {len(kept)} values indistinguishable"
        lines += [f"### {row['method']} ({row['part']}), chosen by `{chosen[0]}` ({chosen[1]}): {marked}", "",
                  f"{noise['how']}.", "",
                  f"| value | mean {chosen[0]} | − best | p | chosen in | indistinguishable | test acc | test ECE |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in noise["rows"]:
            p = "–" if math.isnan(r["p"]) else fmt_p(r["p"]).removeprefix("p = ").removeprefix("p ")
            lines.append(f"| {r['value']} | {r['mean']:.4f} | {r['diff']:+.4f} | {p} | "
                         f"{r['chosen']} of {noise['seeds']} | {'yes' if r['same'] else 'no'} | {r['acc']:.4f} | "
                         f"{r['ece']:.4f} |")
        (a0, a1), (e0, e1) = noise["acc_range"], noise["ece_range"]
        lines += ["", f"Over the indistinguishable values ({', '.join(kept)}): test accuracy {a0:.4f} – {a1:.4f}, "
                      f"test ECE {e0:.4f} – {e1:.4f} (grid trials).", ""]
    return lines + ([""] if lines[-1] else [])


# -- where the differences come from ---------------------------------------------------------------------
def differences_section(protocol: Protocol, results: dict[str, RowResult],
                        variant: tuple[Protocol, dict[str, RowResult]] | None,
                        parts: dict[str, Part]) -> list[str]:
    lines = ["## Where the differences come from", ""]
    if variant is not None:
        other, theirs = variant
        lines += [f"### This protocol against the {other.spec.get('variant', 'other')} variant", "",
                  f"The same rows under `{protocol.rel(other.path)}` ({other.spec.get('variant', '')}): ours minus "
                  "theirs, with the 95 % Welch interval of the difference of means over seeds.", "",
                  "| row | acc here | acc there | difference | ECE here | ECE there | difference |",
                  "|---|---|---|---|---|---|---|"]
        for label, mine in results.items():
            there = theirs.get(label)
            cells = []
            for metric in ("acc", "ece"):
                a, b = getattr(mine, metric), getattr(there, metric) if there else None
                diff = welch_interval(a.values, b.values) if a and b and a.n and b.n else None
                cells += [fmt_interval(a.interval if a else None), fmt_interval(b.interval if b else None),
                          fmt_difference(diff)]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines += [""]
    entries = protocol.spec.get("attribution", [])
    if entries:
        lines += ["### Each correction alone", "",
                  "One correction applied to the reference configuration at a time (a part each); its effect is the "
                  "difference of means over seeds with the 95 % Welch interval.", "",
                  "| correction | row | against | acc effect | ECE effect | seeds |", "|---|---|---|---|---|---|"]
        for entry in entries:
            lines.append(_attribution_line(protocol, parts, entry))
        lines += [""]
    notes = protocol.spec.get("differences", [])
    if notes:
        lines += ["### Known causes of the remaining gaps", ""]
        lines += [f"- {note.strip()}" for note in notes] + [""]
    return lines


def _attribution_line(protocol: Protocol, parts: dict[str, Part], entry: dict[str, Any]) -> str:
    against = entry["against"]
    chosen = choice(protocol, chosen_in(protocol, entry))
    mine = tested_runs(parts[entry["part"]], entry["method"], chosen, entry.get("runs") == FROM_TRIALS)
    ref = tested_runs(parts[against["part"]], against["method"], choice(protocol, chosen_in(protocol, against)),
                      against.get("runs") == FROM_TRIALS)
    effects = []
    for metric in ("test/acc", entry.get("ece_metric", "test/ece")):
        a, b = sample(mine, metric), sample(ref, metric)
        effects.append(fmt_difference(welch_interval(a.values, b.values)) if a.n and b.n else NOT_RUN)
    seeds = f"{len(mine)} vs {len(ref)}" if len(mine) and len(ref) else "–"
    return (f"| {entry['label']} | {entry['part']} ({entry['method']}) | {against['part']} ({against['method']}) | "
            f"{effects[0]} | {effects[1]} | {seeds} |")

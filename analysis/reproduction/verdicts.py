"""Each row's numbers and how they compare with the paper's, and the paper's claims checked on ours.

A row's numbers are its tested runs' test metrics: mean, sample standard deviation and the 95 % Student-t
half-width over seeds (``analysis.stats.mean_ci``). Ours and the paper's are compared as two samples known by
their summaries, ours (mean, SD, n seeds) against the paper's (mean ± its printed spread, taken as the SD over
its seeds): Welch's t-test (``analysis.stats.welch_from_summary``), and the difference in the paper's SDs. A
number is *consistent* with the paper's when p ≥ ``ALPHA``, and *differs* otherwise; with one seed of ours
there is no test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.core.tables import SEED
from analysis.reproduction.parts import (
    FROM_TRIALS,
    Part,
    check_choice,
    chosen_params,
    column,
    run_seconds,
    tested_runs,
)
from analysis.reproduction.protocol import NOT_RUN, Protocol, choice, chosen_in, shown_in
from analysis.stats import ALPHA, Comparison, Interval, mean_ci, welch_from_summary, welch_test

CONSISTENT, DIFFERS, ONE_SEED, NO_VALUES = "consistent", "differs", "no test (1 seed)", "no values"


@dataclass(frozen=True)
class Sample:
    """One row's values of one metric over its seeds."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def interval(self) -> Interval:
        return mean_ci(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def sd(self) -> float:
        return float(np.std(self.values, ddof=1)) if self.n > 1 else math.nan


@dataclass
class RowResult:
    label: str
    block: str
    part: str
    paper: dict[str, tuple[float, float]]
    acc: Sample | None = None
    ece: Sample | None = None
    seeds: list[int] = field(default_factory=list)
    params: str = ""
    seconds: float = math.nan

    @property
    def ran(self) -> bool:
        return self.acc is not None and self.acc.n > 0


def row_result(protocol: Protocol, parts: dict[str, Part], row: dict[str, Any]) -> RowResult:
    part = parts[row["part"]]
    paper = {k: (float(v[0]), float(v[1]) if len(v) > 1 and v[1] is not None else math.nan)
             for k, v in row["paper"].items()}
    out = RowResult(row["label"], shown_in(protocol, row), part.name, paper)
    chosen = choice(protocol, chosen_in(protocol, row))
    from_trials = row.get("runs") == FROM_TRIALS
    check_choice(part, row["label"], chosen_in(protocol, row), chosen, from_trials)
    runs = tested_runs(part, row["method"], chosen, from_trials)
    if runs.empty:
        return out
    out.acc = sample(runs, "test/acc")
    out.ece = sample(runs, row.get("ece_metric", "test/ece"))
    seeds = column(runs, "split_seed" if part.per_seed else SEED).dropna()
    out.seeds = sorted(int(s) for s in seeds)
    out.params = chosen_params(runs)
    epochs = [s.frames.epochs if from_trials else s.frames.rerun_epochs for s in part.collected]
    epochs = [e for e in epochs if len(e)]
    out.seconds = run_seconds(runs, pd.concat(epochs, ignore_index=True) if epochs else None)
    return out


def sample(runs: pd.DataFrame, metric: str) -> Sample:
    values = pd.to_numeric(column(runs, metric), errors="coerce").dropna()
    return Sample(tuple(float(v) for v in values))


def against_paper(ours: Sample | None, paper: tuple[float, float], paper_n: int) -> Comparison | None:
    if ours is None or ours.n == 0:
        return None
    return welch_from_summary(ours.mean, ours.sd, ours.n, paper[0], paper[1], paper_n)


def at_printed_precision(ours: Sample, paper: tuple[float, float], paper_n: int, decimals: int) -> Comparison:
    """Welch's test against the paper's numbers moved, within their rounding (half a unit of the last printed
    decimal), as far towards ours as they may be: the mean towards our mean, the SD up. The largest p that the
    printed numbers allow: when it reaches ``ALPHA``, the printed precision cannot tell ours from the paper's."""
    half = 0.5 * 10.0 ** -decimals
    mean = min(max(ours.mean, paper[0] - half), paper[0] + half)
    return welch_from_summary(ours.mean, ours.sd, ours.n, mean, paper[1] + half, paper_n)


def precision_cause(ours: Sample | None, paper: tuple[float, float], paper_n: int, decimals: int | None) -> str:
    """A differing number's measured cause when the paper's rounding is enough to explain it, else ''. Asked only
    of a number whose verdict is already "differs" (a number the test cannot tell from the paper needs no cause)."""
    if decimals is None or ours is None or ours.n < 2:
        return ""
    test = at_printed_precision(ours, paper, paper_n, decimals)
    if math.isnan(test.p_value) or test.p_value < ALPHA:
        return ""
    half = 0.5 * 10.0 ** -decimals
    return (f"within the paper's printed precision ({decimals} decimal{'' if decimals == 1 else 's'}): against "
            f"{ours.mean - test.diff:.{decimals + 1}f} ± {paper[1] + half:.{decimals + 1}f}, which print as the paper's "
            f"numbers, Welch's test gives {fmt_p(test.p_value)} (measured)")


def verdict(ours: Sample | None, paper: tuple[float, float], paper_n: int) -> str:
    """consistent / differs (Welch's test from the summaries), or why there is no test."""
    if ours is None:
        return NOT_RUN
    if ours.n == 0:
        return NO_VALUES
    test = against_paper(ours, paper, paper_n)
    if ours.n < 2 or test is None or math.isnan(test.p_value):
        return ONE_SEED if ours.n < 2 else "no test (no paper spread)"
    return CONSISTENT if test.p_value >= ALPHA else DIFFERS


def fmt_test(ours: Sample | None, paper: tuple[float, float], paper_n: int) -> str:
    """``consistent (p = 0.41; +0.4 SD)``: the verdict, the p-value and ours minus the paper's mean in the
    paper's SDs."""
    word = verdict(ours, paper, paper_n)
    test = against_paper(ours, paper, paper_n)
    if word not in (CONSISTENT, DIFFERS) or test is None:
        return word
    sds = test.diff / paper[1] if paper[1] > 0 else math.nan
    shift = "" if math.isnan(sds) else f"; {sds:+.1f} SD"
    return f"{word} ({fmt_p(test.p_value)}{shift})"


def fmt_p(p: float) -> str:
    """``p < 0.001`` or ``p = 0.042``."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def claim_result(claim: dict[str, Any], results: dict[str, RowResult]) -> str:
    """A ranking claim checked on our means: ``winner`` is best among ``among``, or every row of ``among``
    beats the row ``beats``; each with Welch's test over seeds against the runner-up (or ``beats``), so a
    win inside seed noise is said to be one."""
    names = [*claim.get("among", []), *[claim[k] for k in ("winner", "beats") if k in claim]]
    missing = [n for n in dict.fromkeys(names) if not results[n].ran]
    if missing:
        return f"not decidable yet: {', '.join(missing)} {NOT_RUN}"
    metric, sign = claim["metric"], (1 if claim.get("best", "max") == "max" else -1)

    def values(label: str) -> Sample:
        return getattr(results[label], metric)

    def mean(label: str) -> float:
        return values(label).mean

    detail = ", ".join(f"{n}: {mean(n):.4f}" for n in claim["among"])
    if "winner" in claim:
        ranked = sorted(claim["among"], key=lambda n: -sign * mean(n))
        best, second = ranked[0], ranked[1] if len(ranked) > 1 else None
        ok = best == claim["winner"]
        margin = "" if second is None else "; " + _margin(values(best), values(second), f"{best} vs {second}")
        return f"{'holds' if ok else 'does not hold'} here (best: {best}{margin}; {detail})"
    ref = mean(claim["beats"])
    losers = [n for n in claim["among"] if not sign * mean(n) > sign * ref]
    verdict_ = "holds" if not losers else f"does not hold ({', '.join(losers)} not better)"
    margins = "; ".join(_margin(values(n), values(claim["beats"]), f"{n} vs {claim['beats']}")
                        for n in claim["among"])
    return f"{verdict_} here ({claim['beats']}: {ref:.4f}; {detail}; {margins})"


def _margin(a: Sample, b: Sample, what: str) -> str:
    test = welch_test(a.values, b.values)
    if math.isnan(test.p_value):
        return f"{what}: no test (1 seed)"
    marked = "" if test.p_value < ALPHA else ", not significant"
    return f"{what}: {fmt_p(test.p_value)}{marked}"

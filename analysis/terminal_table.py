"""What a study answers, for the terminal (the end of ``run``, ``status``, ``report``) and the head of the report.

The answer (``build_answer``, ``format_answer``): per method, its chosen configuration (the completed search trial
with the best first objective on validation) as retrained by the final runs: mean ± 95% half-width over the
seeds every method shares, of the objective and the headline test metrics. A column's best is marked only where
the paired t-test over the shared seeds tells it from some other method; the methods it cannot tell from the best
are tied, and each headline metric gets a one-line verdict. How clear each method's own choice was is its
selection noise (``analysis.selection``). Rows are ordered by the objective's test metric.

Without final runs: one line saying so, then the search table (``build_report``, ``format_table``): each method's
best completed search trial, one seed each. Completed only, as in the full report's leaderboard and in ``rerun``:
a trial ASHA stopped has its value from a shorter training, so ranking it beside finished trials would not be
fair."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.core.catalogue import HEADLINE, TRAINS_ON_VAL, metric_info, metric_mode
from analysis.core.statuses import TrialStatus
from analysis.core.tables import CONFIG_PREFIX, HPARAM_PREFIX, METHOD, SEED, TRAIN_ON
from analysis.formatting import LOSS_PARAMS, fmt_interval, fmt_value, hparams_text, kind_words
from analysis.leaderboard import (
    Declared,
    Leaderboard,
    best_trials,
    build_leaderboard,
    seed_values,
    used_params,
)
from analysis.results import read_rerun_trials, read_trials
from analysis.selection import ALPHA, NONE, SelectionNoise, selection_noise

MODES = ("max", "min")
TABLE_METRICS = ("acc", "nll", "ece", "aurc")  # the search table's columns, val and test, where present
BEST_MARK = "*"  # a column's best, told apart from another method by the paired test
NOT_CLEAR = "≈"  # a choice (or a best) the data cannot tell from others
CHOICE = "choice"  # the column of the selection noise: "≈3 of 5"
VAL_PREFIX = "val/"


# -- the answer: final runs ---------------------------------------------------------------------------
@dataclass
class Answer:
    study: str
    objectives: list[tuple[str, str]]  # (metric, mode); the first chose each method's configuration
    board: Leaderboard
    noise: dict[str, dict[str, SelectionNoise]]  # objective -> method -> its selection noise
    columns: list[str]  # the objective, then the headline test metrics present
    search: Report  # the single search trials, each method's best
    status_counts: dict[str, int] = field(default_factory=dict)
    unranked: list[str] = field(default_factory=list)  # methods with trials but no completed one
    # the final runs trained on the validation split too: their val/* columns are left out (not held out)
    trained_on_val: bool = False

    @property
    def objective(self) -> str:
        return self.objectives[0][0]

    @property
    def has_final_runs(self) -> bool:
        return self.board.kind != "trial"

    @property
    def seeds(self) -> int:
        return len(self.board.shared_seeds)

    @property
    def rows(self) -> list[str]:
        """The methods, best first by the objective's test metric (else the objective) over the seeds."""
        key = test_key(self.objective)
        if key not in self.columns:
            key = self.objective
        sign = -1 if metric_mode(key) == "max" else 1

        def rank(method: str) -> float:
            mean = self.board.interval(method, key).mean
            return sign * mean if math.isfinite(mean) else math.inf

        return sorted((m.method for m in self.board.methods), key=rank)


def test_key(key: str) -> str:
    """The test metric of a validation or training metric (``val/acc`` -> ``test/acc``)."""
    return "test/" + key.split("/", 1)[-1]


def build_answer(study_dir: Path | str, objectives: list[tuple[str, str]], declared: Declared | None = None,
                 trials: pd.DataFrame | None = None, reruns: pd.DataFrame | None = None) -> Answer:
    trials = read_trials(study_dir) if trials is None else trials
    reruns = read_rerun_trials(study_dir) if reruns is None else reruns
    objective, mode = objectives[0]
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not allowed; allowed: {', '.join(MODES)}")
    known = sorted(c for c in trials.columns if c.startswith(("val/", "test/", "train/")))
    if len(trials) and objective not in trials.columns and known:  # no metric at all: no trial has reported yet
        raise ValueError(f"objective={objective!r} is not a metric of this study; known: {', '.join(known)}")
    board = build_leaderboard(trials, reruns, objective, mode, declared=declared)
    trained_on_val = board.kind != "trial" and any(
        TRAIN_ON in m.seeds and (m.seeds[TRAIN_ON] == TRAINS_ON_VAL).any() for m in board.methods)
    columns = [k for k in dict.fromkeys([objective, *HEADLINE])
               if any(seed_values(m, k) for m in board.methods)
               and not (trained_on_val and k.startswith(VAL_PREFIX))]
    noise = {key: selection_noise(trials, reruns, key, key_mode) for key, key_mode in objectives
             if len(trials) and key in trials}
    counts = dict(Counter(trials["status"].fillna("unknown"))) if len(trials) else {}
    tried = set(trials[METHOD].dropna().astype(str)) if METHOD in trials else set()
    search = build_report(study_dir, objective, mode, declared, trials)
    return Answer(study_name(trials, study_dir), list(objectives), board, noise, columns, search, counts,
                  sorted(tried - {m.method for m in board.methods}), trained_on_val)


def study_name(trials: pd.DataFrame, study_dir: Path | str) -> str:
    if "study" in trials and trials["study"].notna().any():
        return str(trials["study"].dropna().iloc[0])
    return Path(study_dir).name


def verdicts(answer: Answer) -> list[tuple[str, str]]:
    """``(label, verdict)`` per column with a better direction: the best method alone, the methods tied with
    it (``ls ≈ maxsup``), or that no method differs."""
    out = []
    methods = len(answer.board.methods)
    for key in answer.columns:
        tied = answer.board.tied.get(key)
        info = metric_info(key)
        if tied is None or tied.best is None or info is None:
            continue
        label = info.label if key.startswith("test/") else key
        names = f" {NOT_CLEAR} ".join(tied.tied)
        if methods < 2:
            continue
        if not tied.decided(methods):
            out.append((label, f"no method differs ({names}; p ≥ {ALPHA:g})"))
        elif len(tied.tied) == 1:
            out.append((label, f"{tied.best} (p < {ALPHA:g} against every other)"))
        else:
            out.append((label, f"{names} (p ≥ {ALPHA:g} between them, < {ALPHA:g} against the rest)"))
    return out


def answer_rows(answer: Answer, mark: Any = None) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the answer table; ``mark(text)`` marks a column's best (default: ``*`` appended)."""
    mark = mark or (lambda text: f"{text} {BEST_MARK}")
    first = answer.noise.get(answer.objective, {})
    header = ["method", "configuration", CHOICE, *answer.columns]
    rows = []
    for method in answer.rows:
        m = next(x for x in answer.board.methods if x.method == method)
        cells = []
        for key in answer.columns:
            text = fmt_interval(answer.board.interval(method, key))
            cells.append(mark(text) if method in answer.board.best.get(key, set()) else text)
        noise = first.get(method)
        rows.append([method, hparams_text(m.hparams), noise.summary() if noise else "—", *cells])
    return header, rows


def answer_caption(answer: Answer) -> str:
    return (f"Each method's chosen configuration (best {answer.objective} of its search) retrained "
            f"({kind_words(answer.board.kind)}): "
            f"mean ± 95% CI over {answer.seeds} shared seed{'' if answer.seeds == 1 else 's'}")


def answer_title(answer: Answer) -> str:
    return f"{answer.study}: the answer. {answer_caption(answer)}"


def trained_on_val_note(answer: Answer) -> list[str]:
    if not answer.trained_on_val:
        return []
    return [f"No {answer.objective} column: the final runs trained on the validation split too "
            f"(final.train_on: {TRAINS_ON_VAL}), so their validation metrics are not held out; the choice was made "
            "on the search trials' validation."]


def answer_notes(answer: Answer) -> list[str]:
    """The lines under the answer table: what the marks mean, the verdicts, the selection noise."""
    lines = [f"{BEST_MARK}: a column's best, told apart from at least one other method by a paired t-test over "
             f"the shared seeds (p < {ALPHA:g}); several marks: tied for best. No mark: no method told apart.",
             *trained_on_val_note(answer)]
    found = verdicts(answer)
    if found:
        lines.append(f"Verdicts (paired t-test over the {answer.seeds} shared seeds):")
        width = max(len(label) for label, _ in found)
        lines += [f"  {label + ':':<{width + 1}} {text}" for label, text in found]
    lines += noise_lines(answer)
    return lines


def noise_lines(answer: Answer) -> list[str]:
    """The selection noise of each objective: how many search trials each choice could not be told from."""
    lines = []
    for objective, by_method in answer.noise.items():
        if not by_method:
            continue
        bases = sorted({n.basis for n in by_method.values()})
        if bases == [NONE]:
            lines.append(f"Selection noise by {objective}: not judged ({NONE}: one seed per search trial and no "
                         "retrained seeds); '?' in the choice column.")
            continue
        lines.append(f"Selection noise by {objective} ({'; '.join(bases)}): '{CHOICE}' = the completed trials "
                     f"of the method the chosen one cannot be told from (p ≥ {ALPHA:g}), of all its completed; "
                     f"{NOT_CLEAR}: not a significant choice. Over those trials:")
        for method in answer.rows:
            n = by_method.get(method)
            if n is None or n.significant is not False:
                continue
            spans = ", ".join(f"{k} {fmt_value(lo)}–{fmt_value(hi)}" for k, (lo, hi) in n.ranges.items())
            lines.append(f"  {method}: {n.summary()}; over them {spans or 'no test metric'}")
    return lines


def format_answer(answer: Answer) -> str:
    """The study's answer for the terminal: the final runs' table, marks, verdicts and selection noise; without
    final runs, a line saying so and the search table."""
    if not answer.has_final_runs:
        text = format_table(answer.search)
        if not answer.search.results:
            return text
        judged = [line for line in noise_lines(answer) if "not judged" not in line]
        return "\n".join([f"{answer.study}: no final runs yet, so no answer over seeds: each row below is one "
                          f"search trial (one seed); 'smoothstudy final <study dir>' trains them.", text, *judged])
    header, rows = answer_rows(answer)
    return "\n".join([answer_title(answer), *aligned(header, rows, numeric_from=3), *answer_notes(answer),
                      *([_unranked_text(answer.unranked)] if answer.unranked else [])])


def answer_dict(answer: Answer) -> dict[str, Any]:
    """The answer as plain data (``status --json``): per method its choice and each column's mean, half-width,
    seeds and mark; the verdicts; the selection noise of each objective."""
    def number(x: float) -> float | None:
        return x if math.isfinite(x) else None

    methods = []
    for method in answer.rows:
        m = next(x for x in answer.board.methods if x.method == method)
        columns = {}
        for key in answer.columns:
            iv = answer.board.interval(method, key)
            columns[key] = {"mean": number(iv.mean), "ci95": number(iv.half_width), "n": iv.n,
                            "best": method in answer.board.best.get(key, set())}
        methods.append({"method": method, "trial_id": m.trial_id, "hparams": m.hparams, "source": m.source,
                        "metrics": columns})
    noise = {objective: {method: {"chosen": n.chosen, "indistinguishable": list(n.members),
                                  "candidates": n.candidates, "basis": n.basis, "significant": n.significant,
                                  "ranges": {k: list(v) for k, v in n.ranges.items()}}
                         for method, n in by_method.items()}
             for objective, by_method in answer.noise.items()}
    return {"objectives": [list(o) for o in answer.objectives], "kind": answer.board.kind,
            "shared_seeds": [_plain(s) for s in answer.board.shared_seeds], "methods": methods,
            "verdicts": dict(verdicts(answer)), "selection_noise": noise, "unranked": answer.unranked,
            "trained_on_val": answer.trained_on_val}


def aligned(header: list[str], rows: list[list[str]], numeric_from: int) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [c.rjust(w) if i >= numeric_from else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


# -- without final runs: the search's single trials ----------------------------------------------------
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
        return sorted(keys, key=lambda k: (not k.startswith(VAL_PREFIX), k))


def build_report(study_dir: Path | str, objective: str, mode: str, declared: Declared | None = None,
                 trials: pd.DataFrame | None = None) -> Report:
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not allowed; allowed: {', '.join(MODES)}")
    trials = read_trials(study_dir) if trials is None else trials
    study = study_name(trials, study_dir)
    counts = dict(Counter(trials["status"].fillna("unknown"))) if len(trials) else {}
    if trials.empty:
        return Report(study, objective, mode, [], counts)
    known = sorted(c for c in trials.columns if c.startswith(("val/", "test/", "train/")))
    if not known:  # no trial has reported a metric yet
        return Report(study, objective, mode, [], counts)
    if objective not in trials.columns:
        raise ValueError(f"objective={objective!r} is not a metric of this study; known: {', '.join(known)}")
    searched = _searched_columns(trials)
    ranked = best_trials(trials, objective, mode)
    done = trials[(trials["status"] == TrialStatus.COMPLETED) & trials[objective].notna()]
    sizes = done[METHOD].astype(str).value_counts() if METHOD in done else pd.Series(dtype=int)
    results = []
    for _, best in ranked.iterrows():
        method = str(best[METHOD])
        results.append(
            MethodResult(
                method=method,
                trial_id=str(best["trial_id"]),
                objective=float(best[objective]),
                status=str(best["status"]),
                epochs_run=int(best["epochs_run"]) if pd.notna(best.get("epochs_run")) else 0,
                hparams=_used(method, {c[len(CONFIG_PREFIX):]: _plain(best[c]) for c in searched
                                       if pd.notna(best[c])}, declared),
                metrics={c: float(best[c]) for c in trials.columns
                         if c.startswith(("val/", "test/")) and _is_number(best[c])},
                trials=int(sizes.get(method, 0)),
            )
        )
    tried = set(trials[METHOD].dropna().astype(str)) if METHOD in trials else set()
    return Report(study, objective, mode, results, counts, sorted(tried - {r.method for r in results}))


def _searched_columns(trials: pd.DataFrame) -> list[str]:
    """The method's own hyperparameters and every other config column that varies across the study (not the
    seed: every trial has its own)."""
    cols = []
    for c in sorted(trials.columns):
        if not c.startswith(CONFIG_PREFIX) or c in (METHOD, SEED):
            continue
        if c.startswith(HPARAM_PREFIX) or trials[c].dropna().astype(str).nunique() > 1:
            cols.append(c)
    return cols


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _is_number(value: Any) -> bool:
    if hasattr(value, "item"):
        value = value.item()
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _used(method: str, hparams: dict[str, Any], declared: Declared | None) -> dict[str, Any]:
    loss = used_params(method, {k.removeprefix(LOSS_PARAMS): v for k, v in hparams.items()
                                if k.startswith(LOSS_PARAMS)}, declared)
    return {k: v for k, v in hparams.items() if not k.startswith(LOSS_PARAMS) or k.removeprefix(LOSS_PARAMS) in loss}


def _table_rows(report: Report, metrics: list[str]) -> tuple[list[str], list[list[str]]]:
    header = ["rank", "method", "trial", report.objective, "hyperparameters", *metrics]
    rows = [
        [str(i), r.method, r.trial_id, fmt_value(r.objective), hparams_text(r.hparams),
         *(fmt_value(r.metrics.get(m, math.nan)) for m in metrics)]
        for i, r in enumerate(report.results, 1)
    ]
    return header, rows


def _summary_metrics(report: Report) -> list[str]:
    keys = set(report.metric_keys)
    return [f"{split}/{m}" for split in ("val", "test") for m in TABLE_METRICS
            if f"{split}/{m}" in keys and f"{split}/{m}" != report.objective]


def format_table(report: Report, metrics: list[str] | None = None) -> str:
    """The search table: one line per method, its best completed single search trial, best first."""
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
        f"{report.study}: single search trials (one seed each): the best completed trial per method by "
        f"{report.objective} ({direction} is better)\n"
        + "\n".join(lines) + ("\n" + _unranked_text(report.unranked) if report.unranked else "")
    )


def _unranked_text(unranked: list[str]) -> str:
    return f"Not ranked (no completed trial, e.g. every trial stopped early by ASHA): {', '.join(unranked)}."

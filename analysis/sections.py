"""The tables of a study's report: leaderboard, significance, reruns, Pareto sets, study facts."""

from __future__ import annotations

import math

import pandas as pd

from analysis.core.catalogue import HEADLINE
from analysis.core.statuses import TrialStatus
from analysis.core.tables import HPARAM_PREFIX, METHOD, SOURCE_TAG
from analysis.document import Block, Heading, Paragraph, Table
from analysis.facts import STUDY, StudyFacts
from analysis.formatting import (
    duration_text,
    fmt_count,
    fmt_interval,
    fmt_p,
    fmt_value,
    hparams_text,
    kind_words,
)
from analysis.leaderboard import Declared, Leaderboard, used_params
from analysis.stats import ALPHA, Comparison, mean_ci, pareto_mask
from analysis.terminal_table import (
    BEST_MARK,
    Answer,
    answer_caption,
    answer_notes,
    answer_rows,
    noise_lines,
    trained_on_val_note,
    verdicts,
)


def answer_blocks(answer: Answer) -> list[Block]:
    """The report's first section: the study's answer (see ``analysis.terminal_table``), with the marks in bold."""
    if not answer.has_final_runs:
        return [Heading("The answer", 2),
                Paragraph("No final runs yet, so no answer over seeds: the leaderboard below holds single search "
                          "trials (one seed each). `smoothstudy final <study dir>` trains them.")]
    header, rows = answer_rows(answer, mark=lambda text: f"**{text}**")
    blocks: list[Block] = [Heading("The answer", 2), Paragraph(answer_caption(answer) + "."),
                           Table(header, rows, numeric_from=3)]
    notes = answer_notes(answer)
    blocks.append(Paragraph(notes[0].replace(f"{BEST_MARK}:", "**Bold**:", 1)))
    blocks += [Paragraph(line) for line in trained_on_val_note(answer)]
    found = verdicts(answer)
    if found:
        blocks.append(Paragraph(f"**Verdicts** (paired t-test over the {answer.seeds} shared seeds): "
                                + "; ".join(f"{label}: {text}" for label, text in found) + "."))
    blocks += [Paragraph(line.strip()) for line in noise_lines(answer)]
    return blocks


def leaderboard_table(board: Leaderboard) -> Table:
    header = ["method", "hyperparameters", board.objective, "seeds", *(m.label for m in board.metrics)]
    rows = []
    for m in board.methods:
        cells = []
        for spec in board.metrics:
            text = fmt_interval(board.interval(m.method, spec.key))
            cells.append(f"**{text}**" if m.method in board.best.get(spec.key, set()) else text)
        rows.append([m.method, hparams_text(m.hparams), fmt_value(m.objective),
                     f"{len(m.seeds)} ({kind_words(board.kind)})", *cells])
    return Table(header, rows, numeric_from=2)


def significance_table(board: Leaderboard, tests: dict[tuple[str, str], Comparison]) -> Table:
    header = ["method", "test", *(m.label for m in board.metrics)]
    rows = []
    for m in board.methods:
        used = sorted({c.test for k, c in tests.items() if k[0] == m.method})
        if not used:
            continue
        cells = []
        for spec in board.metrics:
            c = tests.get((m.method, spec.key))
            if c is None:
                cells.append("—")
                continue
            mark = " *" if math.isfinite(c.p_value) and c.p_value < ALPHA else ""
            cells.append(f"{c.diff:+.4f} ({fmt_p(c.p_value)}){mark}")
        rows.append([m.method, ", ".join(used), *cells])
    return Table(header, rows, numeric_from=2)




def reruns_table(trials: pd.DataFrame, reruns: pd.DataFrame, objective: str, mode: str,
                 declared: Declared | None = None) -> Table | None:
    """Every rerun configuration (``--top K`` reruns K per method), best first by its search objective:
    mean ± 95% CI over its completed seeds. None when the study has no completed rerun."""
    if reruns.empty or SOURCE_TAG not in reruns or "status" not in reruns:
        return None
    done = reruns[reruns["status"] == TrialStatus.COMPLETED]
    if done.empty:
        return None
    source = trials.drop_duplicates("trial_id", keep="last") if "trial_id" in trials else trials.iloc[:0]
    source = source.set_index(source["trial_id"].astype(str)) if "trial_id" in source else source
    keys = [k for k in (objective, *HEADLINE) if k in done]
    rows = []
    for trial_id, group in done.groupby(done[SOURCE_TAG].astype(str)):
        row = source.loc[trial_id] if trial_id in source.index else pd.Series(dtype=object)
        hp = {c.removeprefix(HPARAM_PREFIX): row[c] for c in row.index
              if c.startswith(HPARAM_PREFIX) and pd.notna(row[c])}
        method = row.get(METHOD, group[METHOD].iloc[0] if METHOD in group else "?")
        hp = used_params(str(method), hp, declared)
        searched = float(row[objective]) if objective in row and pd.notna(row[objective]) else math.nan
        rows.append((searched, [str(method), trial_id, hparams_text(hp), fmt_value(searched), str(len(group)),
                                *(fmt_interval(mean_ci(pd.to_numeric(group[k], errors="coerce"))) for k in keys)]))
    rows.sort(key=lambda r: (r[1][0], -r[0] if mode == "max" else r[0]))
    header = ["method", "source trial", "hyperparameters", f"{objective} (search)", "seeds",
              *(f"{k} (reruns)" if k == objective else k for k in keys)]
    return Table(header, [r for _, r in rows], numeric_from=3)


def pareto_table(trials: pd.DataFrame, keys: list[tuple[str, str]],
                 declared: Declared | None = None) -> tuple[pd.DataFrame, Table]:
    """Each method's own Pareto set over ``keys`` (final values of its completed trials: a trial ASHA stopped
    is a model trained for fewer epochs, not a candidate), and whether the trial is on the front of all
    completed trials too."""
    cols = [k for k, _ in keys]
    ranked = trials[trials["status"] == TrialStatus.COMPLETED]
    if any(c not in ranked for c in cols) or METHOD not in ranked:  # e.g. every trial diverged before a report
        return ranked.iloc[:0].assign(on_front=[], on_method_front=[]), Table(["method"], [])
    ranked = ranked.dropna(subset=cols)
    if ranked.empty:
        return ranked.assign(on_front=[], on_method_front=[]), Table(["method"], [])
    modes = [m for _, m in keys]
    ranked = ranked.assign(on_front=pareto_mask(ranked[cols].to_numpy(float), modes), on_method_front=False)
    for _, group in ranked.groupby(METHOD):
        ranked.loc[group.index, "on_method_front"] = pareto_mask(group[cols].to_numpy(float), modes)
    chosen = ranked[ranked["on_method_front"]].sort_values([METHOD, cols[0]],
                                                           ascending=[True, keys[0][1] == "min"])
    hp_cols = [c for c in trials.columns if c.startswith(HPARAM_PREFIX)]
    rows = []
    for _, r in chosen.iterrows():
        hp = used_params(str(r[METHOD]), {c.removeprefix(HPARAM_PREFIX): r[c] for c in hp_cols
                                          if pd.notna(r[c])}, declared)
        rows.append([str(r[METHOD]), str(r["trial_id"]), str(r["status"]), hparams_text(hp),
                     *(fmt_value(float(r[c])) for c in cols), "yes" if r["on_front"] else "no"])
    header = ["method", "trial", "status", "hyperparameters",
              *(f"{k} ({'max' if m == 'max' else 'min'})" for k, m in keys), "on the front of all trials"]
    return ranked, Table(header, rows, numeric_from=4)


def facts_blocks(f: StudyFacts) -> list[Block]:
    rows = [
        ["trials", str(f.trials)],
        ["completed", str(f.completed)],
        ["stopped early by ASHA", str(f.stopped)],
        ["failed (error or diverged)", str(f.failed)],
        ["still running / unknown", str(f.running)],
        ["trial-epochs trained (search)", str(f.trial_epochs)],
        ["final runs", str(f.final_runs)],
        ["reruns (smoothstudy rerun)", str(f.reruns - f.final_runs)],
        ["trial-epochs trained after the search", str(f.rerun_epochs)],
        ["wall time of the search", duration_text(f.wall_time_s)],
        ["summed trial time", duration_text(f.trial_time_s)],
    ]
    env = [[k, str(v)] for k, v in f.versions.items()]
    env += [[f"driver {k}" if f.environment_of == STUDY else k, str(v)] for k, v in f.machine.items()]
    env += [[f"Ray cluster {k}", fmt_count(v)] for k, v in f.cluster.items()]
    if f.environment_of == STUDY:
        where = ("Software and machine of the study, recorded when it started: package versions and the driver "
                 "process's machine, and the Ray cluster the trials ran on:")
    else:
        where = ("This study did not record its software and machine (it predates that record): these are of the "
                 "process that wrote this report, not necessarily the study's:")
    return [Heading("Study facts", 2), Table(["fact", "value"], rows), Paragraph(where),
            Table(["component", "version / value"], env, numeric_from=2)]

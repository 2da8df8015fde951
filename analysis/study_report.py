"""The report of one study (``report.md`` + self-contained ``report.html`` + PNGs). Reads only Parquet
(the learned target matrices included); what lives elsewhere (class names in the dataset registry, the losses'
declared hyperparameters, the Optuna trials) is handed in by the caller."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.core.catalogue import metric_mode
from analysis.core.layout import REPORT_HTML, REPORT_IMG_DIR, REPORT_MARKDOWN
from analysis.core.statuses import FINISHED
from analysis.core.tables import FINAL_KIND, METHOD, target_matrix
from analysis.document import Block, Heading, Image, Paragraph, to_html, to_markdown
from analysis.facts import StudyFacts, study_facts
from analysis.frames import study_frames
from analysis.leaderboard import (
    BASELINES,
    RERUNS,
    SEARCH_TRIAL,
    BootstrapCache,
    Declared,
    Leaderboard,
    MethodSeeds,
    sample_columns,
    significance,
)
from analysis.optuna_section import optuna_blocks
from analysis.plots import report_plots as rp
from analysis.results import (
    read_matrices,
    read_rerun_samples,
    read_samples,
)
from analysis.sections import (
    ALPHA,
    answer_blocks,
    facts_blocks,
    leaderboard_table,
    pareto_table,
    reruns_table,
    significance_table,
)
from analysis.spend import spend_by_method, spend_table
from analysis.stats import WELCH, Comparison
from analysis.terminal_table import build_answer

DEFAULT_PARETO = (("val/acc", "max"), ("val/aurc", "min"), ("val/ece", "min"))
HPARAM_METRICS = ("val/acc", "val/ece", "val/aurc")
IMG_DIR = REPORT_IMG_DIR



@dataclass
class ReportInputs:
    study_dir: Path
    objectives: list[tuple[str, str]]  # (metric, mode); the first ranks the leaderboard
    name: str = ""
    rungs: list[int] = field(default_factory=list)  # ASHA's comparison epochs
    class_names: list[str] = field(default_factory=list)
    resamples: int = 500  # bootstrap resamples when there is one seed per method
    environment: dict = field(default_factory=dict)  # versions, driver, cluster recorded at the study's start
    resources: tuple[float, float] = (1.0, 0.0)  # CPUs and GPUs each trial reserved
    optuna_trials: Callable[[], list] | None = None  # the study's Optuna trials (FrozenTrial), read on demand
    declared: Declared | None = None  # method -> its loss's hyperparameters (shows only the used ones)


@dataclass
class StudyReport:
    name: str
    blocks: list[Block]
    board: Leaderboard
    tests: dict[str, dict[tuple[str, str], Comparison]]  # baseline -> (method, metric) -> comparison
    pareto: pd.DataFrame
    facts: StudyFacts
    images: list[Path]


@dataclass
class ReportFiles:
    markdown: Path
    html: Path
    images: list[Path]



def _load_columns(inputs: ReportInputs, m: MethodSeeds) -> dict[str, np.ndarray] | None:
    """The per-sample outputs the bootstrap uses: the single rerun's when there is one, else the search
    trial's."""
    row = m.seeds.iloc[0]
    temperature = float(row.get("test/temperature", 1.0)) if pd.notna(row.get("test/temperature")) else 1.0
    try:
        if m.source == RERUNS:
            raw = read_rerun_samples(inputs.study_dir, str(row["trial_id"]))
        else:
            raw = read_samples(inputs.study_dir, m.trial_id)
    except FileNotFoundError:
        return None
    return sample_columns(raw, temperature)


def _best_samples(inputs: ReportInputs, board: Leaderboard) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for m in board.methods:
        try:
            out[m.method] = read_samples(inputs.study_dir, m.trial_id)
        except FileNotFoundError:
            continue
    return out


def _retrained_samples(inputs: ReportInputs, board: Leaderboard) -> dict[str, list[dict[str, np.ndarray]]]:
    """Per method, the per-sample outputs of each seed its row is over (its final runs'), where recorded."""
    out: dict[str, list[dict[str, np.ndarray]]] = {}
    for m in board.methods:
        if m.source != RERUNS:
            continue
        for run in m.seeds["trial_id"].astype(str):
            try:
                columns = read_rerun_samples(inputs.study_dir, run)
            except FileNotFoundError:
                continue
            out.setdefault(m.method, []).append(columns)
    return out


def build_study_report(inputs: ReportInputs, img_dir: Path, prefix: str = "") -> StudyReport:
    """Every section of one study's report; figures go to ``img_dir`` with names starting with ``prefix``."""
    study = inputs.study_dir
    data = study_frames(study)
    trials, reruns, epochs = data.trials, data.reruns, data.epochs
    name = inputs.name or (str(trials["study"].dropna().iloc[0]) if "study" in trials and
                           trials["study"].notna().any() else Path(study).name)
    objective, mode = inputs.objectives[0]
    answer = build_answer(study, inputs.objectives, inputs.declared, trials, reruns)
    board = answer.board
    cache = BootstrapCache(inputs.resamples)
    tests = {b: significance(board, b, lambda m: _load_columns(inputs, m), cache) for b in BASELINES}
    facts = study_facts(trials, reruns, inputs.environment)
    blocks: list[Block] = []
    images: list[Path] = []

    def image(path: Path | None, caption: str) -> None:
        if path is not None:
            images.append(path)
            blocks.append(Image(path, caption))

    objectives_text = ", ".join(f"`{k}` ({m})" for k, m in inputs.objectives)
    blocks += [
        Paragraph(f"Study `{name}`. Objective{'s' if len(inputs.objectives) > 1 else ''}: {objectives_text}. "
                  f"Trials: {facts.trials} ({facts.completed} completed, {facts.stopped} stopped early by "
                  f"ASHA, {facts.failed} failed)."),
        *answer_blocks(answer),
        Heading("Leaderboard", 2),
        Paragraph(f"Each method's best configuration: its completed trial with the best final `{objective}`. "
                  "Test metrics are mean ± half-width of the 95% Student-t confidence interval over the seeds "
                  "of the final runs of that configuration (else of its reruns, `smoothstudy rerun`), each seed once; "
                  "with one seed, the single value. **Bold**: a column's best, told apart from at least one other "
                  "method by a paired t-test over the shared seeds (several: tied for best; none: no method told "
                  "apart). R² has no better direction: higher means more separated classes."),
    ]
    if board.methods:
        blocks.append(leaderboard_table(board))
    else:
        blocks.append(Paragraph("No completed trial with the objective yet."))
    if board.methods and all(m.source == SEARCH_TRIAL for m in board.methods):
        blocks.append(Paragraph("**These numbers are single search trials**: the study has no final runs (a "
                                "`final: {top: 1, seeds: 3}` section, or `smoothstudy final <study dir>`), so each "
                                "method's row is the best of its own search trials, one seed, and a method that "
                                "ran more trials had more draws. What each method's search ran and spent:"))
        blocks.append(spend_table(spend_by_method(trials, *inputs.resources)))
    unranked = sorted(set(trials.get(METHOD, pd.Series(dtype=str)).dropna().astype(str))
                      - {m.method for m in board.methods})
    if unranked:
        blocks.append(Paragraph(f"Not on the leaderboard (no completed trial, e.g. every trial stopped early by "
                                f"ASHA): {', '.join(unranked)}."))
    rerun_table = reruns_table(trials, reruns, objective, mode, inputs.declared)
    if rerun_table is not None:
        blocks += [Heading("Reruns", 2),
                   Paragraph("Every configuration retrained by `smoothstudy rerun` (with `--top K`, the K best of "
                             "each method), mean ± 95% CI over its seeds; the leaderboard uses the reruns of "
                             "each method's best search trial."),
                   rerun_table]
    blocks.append(Heading("Significance against the baselines", 2))
    for base in BASELINES:
        t = tests[base]
        if not t:
            blocks.append(Paragraph(f"No `{base}` trial in this study: no comparison against it."))
            continue
        used = sorted({c.test for c in t.values()})
        blocks += [
            Heading(f"against {base}", 3),
            Paragraph(f"Difference method − {base} (in the metric's own units) and its two-sided p-value; "
                      f"* marks p < {ALPHA}. Test: {_test_text(used, t)}. No correction for multiple "
                      "comparisons."),
            significance_table(board, t),
        ]
    pareto_keys = list(inputs.objectives) if len(inputs.objectives) > 1 else list(DEFAULT_PARETO)
    pareto, ptable = pareto_table(trials, pareto_keys, inputs.declared)
    blocks += [
        Heading("Pareto sets", 2),
        Paragraph("Per method, the completed trials no other completed trial of that method beats in every one "
                  f"of {', '.join(f'`{k}`' for k, _ in pareto_keys)} (final values). Trials ASHA stopped are on "
                  "no front (their models trained fewer epochs); the figures draw them as grey crosses."),
        ptable,
    ]
    finished = trials[trials["status"].isin(FINISHED)]
    image(rp.plot_pareto(finished, list(DEFAULT_PARETO), img_dir / f"{prefix}pareto.png"),
          "Accuracy / AURC / ECE Pareto front of the completed trials; black rings: trials on the front of all "
          "three; grey crosses (dimmed, possibly off the axes): stopped by ASHA.")
    if {k for k, _ in pareto_keys} != {k for k, _ in DEFAULT_PARETO}:
        image(rp.plot_pareto(finished, pareto_keys, img_dir / f"{prefix}pareto_objectives.png"),
              "Pareto front of the study's objectives over the completed trials; black rings: trials on the "
              "front; grey crosses (dimmed, possibly off the axes): stopped by ASHA.")
    blocks.append(Heading("Figures", 2))
    samples = _best_samples(inputs, board)
    retrained = _retrained_samples(inputs, board)
    if retrained and set(retrained) == {m.method for m in board.methods}:
        image(rp.plot_risk_coverage_methods(retrained, img_dir / f"{prefix}risk_coverage.png"),
              f"Risk–coverage curves of each method's chosen configuration, one curve per seed of its "
              f"{'final runs' if board.kind == FINAL_KIND else 'reruns'}: the lower the curve, the better the "
              f"confidence ranks errors last; the area under it is the AURC (the legend's: the mean over the "
              f"seeds). Coverage from {rp.MIN_COVERAGE:g}: below it a handful of samples make the risk jump.")
    elif samples:
        image(rp.plot_risk_coverage_methods(samples, img_dir / f"{prefix}risk_coverage.png"),
              "Risk–coverage curves of each method's best search trial (one seed): the lower the curve, the "
              "better the confidence ranks errors last; the area under it is the AURC. Coverage from "
              f"{rp.MIN_COVERAGE:g}: below it a handful of samples make the risk jump.")
    if samples:
        image(rp.plot_reliability_methods(samples, img_dir / f"{prefix}reliability.png"),
              "Reliability diagrams: bars on the diagonal are perfectly calibrated; red is the gap.")
    hp_metrics = [(objective, mode)] + [(k, metric_mode(k)) for k in HPARAM_METRICS if k != objective]
    image(rp.plot_metric_vs_hparam(trials, hp_metrics, img_dir / f"{prefix}metric_vs_hparam.png"),
          "Validation metrics versus each method's hyperparameter over all trials.")
    image(rp.plot_learning_curves(epochs, trials, objective, mode, img_dir / f"{prefix}learning_curves.png",
                                  inputs.rungs),
          f"Learning curves of `{objective}`; ✕ marks where ASHA stopped a trial.")
    blocks += _matrix_blocks(inputs, board, samples, img_dir, prefix, images)
    if inputs.optuna_trials is not None:
        found, pictures = optuna_blocks(inputs.optuna_trials(), objective, mode, inputs.rungs, img_dir, prefix)
        blocks += found
        images += pictures
    blocks += facts_blocks(facts)
    return StudyReport(name, blocks, board, tests, pareto, facts, images)


def _test_text(used: list[str], tests: dict[tuple[str, str], Comparison]) -> str:
    parts = []
    for name in used:
        ns = sorted({c.n for c in tests.values() if c.test == name})
        if name == "t-test":
            parts.append(f"paired t-test over seeds (n = {', '.join(map(str, ns))} seeds)")
        elif name == WELCH:
            parts.append(f"Welch t-test over seeds, unpaired because the two methods' reruns share fewer than 2 "
                         f"seeds (n = {', '.join(map(str, ns))} seeds in the smaller group)")
        else:
            parts.append(f"paired bootstrap over test samples ({', '.join(map(str, ns))} resamples; one seed "
                         "per method)")
    return "; ".join(parts) or "none"


def _matrix_blocks(inputs: ReportInputs, board: Leaderboard, samples: dict, img_dir: Path, prefix: str,
                   images: list[Path]) -> list[Block]:
    """Each method that learns a soft-label target matrix: its best trial's, read from the matrices table."""
    blocks: list[Block] = []
    for m in board.methods:
        if m.method not in samples:
            continue
        try:
            matrix = read_matrices(inputs.study_dir, m.trial_id).get(target_matrix(m.method))
        except (OSError, ValueError) as err:  # an unreadable file costs one figure, not the report
            warnings.warn(f"no learned matrix for {m.method} trial {m.trial_id}: {err}", stacklevel=2)
            matrix = None
        if matrix is None:
            continue
        s = samples[m.method]
        confusion = rp.confusion_matrix(s["label"], s["pred"], matrix.shape[0])
        path, corr = rp.plot_matrix_vs_confusion(matrix, confusion, inputs.class_names,
                                                 f"{m.method} (trial {m.trial_id})",
                                                 img_dir / f"{prefix}matrix_{m.method}.png")
        images.append(path)
        blocks.append(Image(path, f"{m.method}: learned soft-label matrix next to the test confusion matrix; "
                                  f"off-diagonal correlation r = {corr:.3f}."))
    return blocks


def write_study_report(inputs: ReportInputs, out_dir: Path | str) -> ReportFiles:
    out = Path(out_dir)
    img = out / IMG_DIR
    img.mkdir(parents=True, exist_ok=True)
    rep = build_study_report(inputs, img)
    title = f"Study {rep.name}: comparison of label-smoothing methods"
    blocks: list[Block] = [Heading(title, 1), *rep.blocks, *reading_guide()]
    return write_files(blocks, title, out, rep.images)


def write_files(blocks: list[Block], title: str, out: Path, images: list[Path]) -> ReportFiles:
    md = out / REPORT_MARKDOWN
    md.write_text(to_markdown(blocks, out))
    page = out / REPORT_HTML
    page.write_text(to_html(blocks, title))
    return ReportFiles(md, page, images)


def reading_guide() -> list[Block]:
    return [
        Heading("How to read this report", 2),
        Paragraph("Accuracy, coverage at 5% risk, AUROC and probe accuracy: higher is better. NLL, ECE and AURC: "
                  "lower is better. ECE after TS is the calibration left after temperature scaling on the "
                  "validation split. AURC (lognorm) uses the logit-normalised confidence (Xia et al.), which "
                  "repairs the ranking of errors that label smoothing degrades. A method beats a baseline "
                  "when its difference has the right sign and a small p-value; with few seeds, a p-value "
                  "above 0.05 means 'not shown', not 'equal'."),
    ]

"""The full comparison report of a study (``report.md`` + self-contained ``report.html`` + PNGs) and the
comparison across studies. Reads only Parquet; what lives elsewhere (learned matrices in MLflow, class
names in the dataset registry) is handed in by the caller."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.core.catalogue import HEADLINE, metric_mode
from analysis.core.statuses import FINISHED, TrialStatus
from analysis.document import Block, Heading, Image, Paragraph, Table, to_html, to_markdown
from analysis.facts import STUDY, StudyFacts, study_facts
from analysis.frames import study_frames
from analysis.leaderboard import (
    BASELINES,
    METHOD,
    SOURCE_TAG,
    BootstrapCache,
    Declared,
    Leaderboard,
    MethodSeeds,
    build_leaderboard,
    sample_columns,
    significance,
    used_params,
)
from analysis.optuna_section import optuna_blocks
from analysis.plots import report_plots as rp
from analysis.results import (
    read_rerun_samples,
    read_samples,
)
from analysis.spend import spend_by_method, spend_table
from analysis.stats import WELCH, Comparison, Interval, mean_ci, pareto_mask

DEFAULT_PARETO = (("val/acc", "max"), ("val/aurc", "min"), ("val/ece", "min"))
HPARAM_METRICS = ("val/acc", "val/ece", "val/aurc")
MATRIX_METHODS = ("lspp", "lls")
ALPHA = 0.05
IMG_DIR = "img"


@dataclass
class ReportInputs:
    study_dir: Path
    objectives: list[tuple[str, str]]  # (metric, mode); the first ranks the leaderboard
    name: str = ""
    rungs: list[int] = field(default_factory=list)  # ASHA's comparison epochs
    class_names: list[str] = field(default_factory=list)
    load_matrix: Callable[[str, str], np.ndarray | None] | None = None  # (trial_id, method) -> K×K
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


# -- formatting -----------------------------------------------------------------------------------------
def fmt_value(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    return f"{x:.4g}" if x != 0 and (abs(x) >= 1000 or abs(x) < 0.001) else f"{x:.4f}"


def fmt_interval(iv: Interval) -> str:
    if iv.n == 0:
        return "—"
    if iv.n < 2:
        return fmt_value(iv.mean)
    fixed = iv.mean != 0 and 0.001 <= abs(iv.mean) < 1000
    # the half-width to the mean's own decimals, so a column reads alike ("0.0298 ± 0.0004")
    half = f"{iv.half_width:.4f}" if fixed and math.isfinite(iv.half_width) else fmt_value(iv.half_width)
    return f"{fmt_value(iv.mean)} ± {half}"


def fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "p=—"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def hparams_text(hparams: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in hparams.items()) or "—"


# -- sections -------------------------------------------------------------------------------------------
def leaderboard_table(board: Leaderboard) -> Table:
    header = ["method", "hyperparameters", board.objective, "seeds", *(m.label for m in board.metrics)]
    rows = []
    for m in board.methods:
        cells = []
        for spec in board.metrics:
            text = fmt_interval(board.interval(m.method, spec.key))
            cells.append(f"**{text}**" if m.method in board.best.get(spec.key, set()) else text)
        rows.append([m.method, hparams_text(m.hparams), fmt_value(m.objective),
                     f"{len(m.seeds)} ({m.source})", *cells])
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
        hp = {c.removeprefix("config/loss_params."): row[c] for c in row.index
              if c.startswith("config/loss_params.") and pd.notna(row[c])}
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
    hp_cols = [c for c in trials.columns if c.startswith("config/loss_params.")]
    rows = []
    for _, r in chosen.iterrows():
        hp = used_params(str(r[METHOD]), {c.removeprefix("config/loss_params."): r[c] for c in hp_cols
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
        ["reruns (trial-epochs)", f"{f.reruns} ({f.rerun_epochs})"],
        ["wall time of the search", _duration(f.wall_time_s)],
        ["summed trial time", _duration(f.trial_time_s)],
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


def fmt_count(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "—"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min ({seconds:.0f} s)"


# -- assembling a study's report ------------------------------------------------------------------------
def _load_columns(inputs: ReportInputs, m: MethodSeeds) -> dict[str, np.ndarray] | None:
    """The per-sample outputs the bootstrap uses: the single rerun's when there is one, else the search
    trial's."""
    row = m.seeds.iloc[0]
    temperature = float(row.get("test/temperature", 1.0)) if pd.notna(row.get("test/temperature")) else 1.0
    try:
        if m.source == "reruns":
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


def build_study_report(inputs: ReportInputs, img_dir: Path, prefix: str = "") -> StudyReport:
    """Every section of one study's report; figures go to ``img_dir`` with names starting with ``prefix``."""
    study = inputs.study_dir
    data = study_frames(study)
    trials, reruns, epochs = data.trials, data.reruns, data.epochs
    name = inputs.name or (str(trials["study"].dropna().iloc[0]) if "study" in trials and
                           trials["study"].notna().any() else Path(study).name)
    objective, mode = inputs.objectives[0]
    board = build_leaderboard(trials, reruns, objective, mode, declared=inputs.declared)
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
        Heading("Leaderboard", 2),
        Paragraph(f"Each method's best configuration: its completed trial with the best final `{objective}`. "
                  "Test metrics are mean ± half-width of the 95% Student-t confidence interval over the seeds "
                  "of the reruns of that configuration (`smoothstudy rerun`); with one seed, the single value. "
                  "**Bold**: the best mean per column (R² has no better direction: higher means more "
                  "separated classes)."),
    ]
    if board.methods:
        blocks.append(leaderboard_table(board))
    else:
        blocks.append(Paragraph("No completed trial with the objective yet."))
    if board.methods and all(m.source == "search trial" for m in board.methods):
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
          "three; grey crosses: stopped by ASHA.")
    if {k for k, _ in pareto_keys} != {k for k, _ in DEFAULT_PARETO}:
        image(rp.plot_pareto(finished, pareto_keys, img_dir / f"{prefix}pareto_objectives.png"),
              "Pareto front of the study's objectives over the completed trials; black rings: trials on the "
              "front; grey crosses: stopped by ASHA.")
    blocks.append(Heading("Figures", 2))
    samples = _best_samples(inputs, board)
    if samples:
        image(rp.plot_risk_coverage_methods(samples, img_dir / f"{prefix}risk_coverage.png"),
              "Risk–coverage curves of each method's best model: the lower the curve, the better the "
              "confidence ranks errors last; the area under it is the AURC.")
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
    if inputs.load_matrix is None:
        return []
    blocks: list[Block] = []
    for m in board.methods:
        if m.method not in MATRIX_METHODS or m.method not in samples:
            continue
        try:
            matrix = inputs.load_matrix(m.trial_id, m.method)
        except Exception as err:  # noqa: BLE001 - a missing artifact costs one figure, not the report
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
    return _write(blocks, title, out, rep.images)


def _write(blocks: list[Block], title: str, out: Path, images: list[Path]) -> ReportFiles:
    md = out / "report.md"
    md.write_text(to_markdown(blocks, out))
    page = out / "report.html"
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


# -- across studies -------------------------------------------------------------------------------------
CROSS_METRICS = ("test/acc", "test/ece", "test/aurc")


def write_comparison(inputs: list[ReportInputs], out_dir: Path | str) -> ReportFiles:
    """One document comparing several studies (e.g. one per dataset): a table of each method's key metrics
    per study, the average rank of each method per metric across studies, then every study's own sections."""
    if len(inputs) < 1:
        raise ValueError("inputs is empty; expected at least one study")
    out = Path(out_dir)
    img = out / IMG_DIR
    img.mkdir(parents=True, exist_ok=True)
    reports = [build_study_report(inp, img, prefix=f"{i}_") for i, inp in enumerate(inputs)]
    names = [r.name for r in reports]
    title = f"Comparison of studies: {', '.join(names)}"
    methods = sorted({m.method for r in reports for m in r.board.methods})
    header = ["method"] + [f"{n}: {k.removeprefix('test/')}" for n in names for k in CROSS_METRICS]
    rows = [[meth] + [fmt_interval(r.board.interval(meth, k)) for r in reports for k in CROSS_METRICS]
            for meth in methods]
    ranks = cross_study_ranks(reports, CROSS_METRICS)
    rank_rows = [[meth] + [fmt_value(ranks.get((meth, k), math.nan)) for k in CROSS_METRICS] for meth in methods]
    blocks: list[Block] = [
        Heading(title, 1),
        Paragraph("Per study, each method's best configuration (mean ± 95% CI over rerun seeds where there are "
                  "reruns). The rank table averages each method's rank (1 = best) over the studies that ran it."),
        Table(header, rows),
        Heading("Average rank across studies", 2),
        Table(["method", *(k.removeprefix("test/") for k in CROSS_METRICS)], rank_rows),
    ]
    images: list[Path] = []
    for r in reports:
        blocks += [Heading(f"Study {r.name}", 2), *[_demote(b) for b in r.blocks]]
        images += r.images
    blocks += reading_guide()
    return _write(blocks, title, out, images)


def cross_study_ranks(reports: list[StudyReport], keys: tuple[str, ...]) -> dict[tuple[str, str], float]:
    """Mean rank (1 = best, ties share the mean rank) of each method per metric over the studies."""
    collected: dict[tuple[str, str], list[float]] = {}
    for r in reports:
        for key in keys:
            means = pd.Series({m.method: r.board.interval(m.method, key).mean for m in r.board.methods},
                              dtype=float).dropna()
            if means.empty:
                continue
            ranks = means.rank(ascending=(metric_mode(key) == "min"), method="average")
            for meth, rank in ranks.items():
                collected.setdefault((meth, key), []).append(float(rank))
    return {k: float(np.mean(v)) for k, v in collected.items()}


def _demote(b: Block) -> Block:
    return Heading(b.text, min(b.level + 1, 6)) if isinstance(b, Heading) else b

"""A published table reproduced in parts: the protocol file (``docs/reproductions/<name>.yaml``) names the table's
blocks (each an objective on validation that chooses the configurations), the parts (one study each), the
table's rows (block, part, method, the paper's numbers) and the paper's claims; each part's tables are
committed under ``<data>/<part>/`` (``parquet/`` as the study wrote it, ``study.yaml``, ``study.json``), and
:func:`render` turns them into one Markdown document. One part may serve several blocks: its study's final runs
retrain the configuration each block's objective chooses (``final.also_chosen_by``).

Everything in the document is computed here from the committed tables, read through
``analysis.frames.study_frames``; only the protocol file's text and the paper's numbers come from elsewhere.
A part without data, or without completed final runs for a row, shows "not run yet": no number is filled in.

Rules (also written into the document):

- ours: each row's final runs (``parquet/reruns``, ``tag/kind = final``, completed, those of the method's grid
  trial best by the objective of the row's block, or of its ``chosen_by`` block, on validation: recomputed
  from the part's trials table) give mean ± the 95 % Student-t half-width over seeds
  (``analysis.stats.mean_ci``) of ``test/acc`` and of the row's ECE metric (``test/ece``; ``test/ece_ts``
  for temperature scaling);
- a paper value *holds* here when it lies in our 95 % interval widened by half a unit of the paper's last
  printed digit (it prints 3 decimals: ± 0.0005); with fewer than 2 seeds there is no interval;
- a ranking claim is checked on our means once every row it names has final runs.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from analysis.core.layout import StudyDir
from analysis.core.statuses import TrialStatus
from analysis.core.tables import FINAL_KIND, HPARAM_PREFIX, KIND_TAG, METHOD, SEED, SOURCE_TAG
from analysis.frames import StudyFrames, study_frames
from analysis.leaderboard import best_trials, best_trials_by
from analysis.stats import Interval, mean_ci

PAPER_ROUNDING = 0.0005  # half a unit of the paper's third decimal
NOT_RUN = "not run yet"


# -- the protocol file ------------------------------------------------------------------------------------
@dataclass
class Protocol:
    path: Path
    spec: dict[str, Any]

    @property
    def data_dir(self) -> Path:
        return self.path.parent / self.spec.get("data", "data")

    @property
    def repo_root(self) -> Path:
        """The first folder above the protocol file with a ``pyproject.toml`` (paths in the file are
        relative to it), else the protocol's folder."""
        for parent in self.path.resolve().parents:
            if (parent / "pyproject.toml").is_file():
                return parent
        return self.path.parent

    def part_dir(self, part: str) -> Path:
        return self.data_dir / part

    def rel(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.repo_root))
        except ValueError:
            return str(path)


def load_protocol(path: Path | str) -> Protocol:
    """Reads and checks a protocol file; bad input raises ValueError with one line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"protocol={path}: no such file")
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(spec, dict):
        raise ValueError(f"protocol={path}: expected a mapping")
    for key in ("title", "blocks", "parts", "rows"):
        if key not in spec:
            raise ValueError(f"protocol={path}: missing key {key!r}")
    blocks, parts = spec["blocks"], spec["parts"]
    for name, block in blocks.items():
        if not {"objective", "mode"} <= set(block) or block["mode"] not in ("max", "min"):
            raise ValueError(f"protocol={path}: block {name!r} needs objective and mode (max or min)")
    panel = [(f"aurc_panel.{k}", v) for k, v in (spec.get("aurc_panel") or {}).items()]
    for name, entry in [*((f"row {r.get('label')!r}", r) for r in spec["rows"]), *panel]:
        for key in ("block", "chosen_by"):
            if key in entry and entry[key] not in blocks:
                raise ValueError(f"protocol={path}: {name} has {key}={entry[key]!r}; allowed: " + ", ".join(blocks))
        if entry.get("part") not in parts:
            raise ValueError(f"protocol={path}: {name} has part={entry.get('part')!r}; allowed: " + ", ".join(parts))
    labels = set()
    for row in spec["rows"]:
        for key in ("label", "method", "paper"):
            if key not in row:
                raise ValueError(f"protocol={path}: row {row.get('label')!r} lacks {key!r}")
        labels.add(row["label"])
    for claim in spec.get("claims", []):
        names = [*claim.get("among", []), *[claim[k] for k in ("winner", "beats") if k in claim]]
        unknown = [n for n in names if n not in labels]
        if unknown:
            raise ValueError(f"protocol={path}: claim {claim.get('text')!r} names unknown rows {unknown}")
    return Protocol(path, spec)


def shown_in(protocol: Protocol, row: dict[str, Any]) -> str:
    """The block a row is shown (and ranked) in: its ``block``, else the first block."""
    return row.get("block", next(iter(protocol.spec["blocks"])))


def chosen_in(protocol: Protocol, row: dict[str, Any]) -> str:
    """The block whose objective chooses a row's configuration: its ``chosen_by``, else the block it is shown
    in (a row of the aurc panel: the first block)."""
    return row.get("chosen_by", shown_in(protocol, row))


def choice(protocol: Protocol, block: str) -> tuple[str, str]:
    spec = protocol.spec["blocks"][block]
    return spec["objective"], spec["mode"]


# -- one part's committed data ----------------------------------------------------------------------------
@dataclass
class Part:
    name: str
    dir: Path
    frames: StudyFrames | None = None
    study: dict[str, Any] = field(default_factory=dict)  # study.yaml
    meta: dict[str, Any] = field(default_factory=dict)  # study.json

    @property
    def present(self) -> bool:
        return self.frames is not None

    @property
    def selections(self) -> list[tuple[str, str]]:
        """``(metric, mode)`` of each choice its final runs retrained: the study's first objective, then its
        ``final.also_chosen_by`` (study.final)."""
        obj = self.study.get("objective")
        first = (obj[0] if obj else None) if isinstance(obj, list) else obj
        extra = (self.study.get("final") or {}).get("also_chosen_by") or []
        pairs = [(o["metric"], o.get("mode", "max")) for o in (first, *extra) if isinstance(o, dict) and "metric" in o]
        return list(dict.fromkeys(pairs))


def load_part(protocol: Protocol, name: str) -> Part:
    part = Part(name, protocol.part_dir(name))
    study = StudyDir(part.dir)
    if not study.parquet.is_dir():
        return part
    part.frames = study_frames(part.dir)
    if study.study_file.is_file():
        part.study = yaml.safe_load(study.study_file.read_text(encoding="utf-8")) or {}
    if study.meta_file.is_file():
        part.meta = json.loads(study.meta_file.read_text(encoding="utf-8"))
    return part


def check_choice(part: Part, label: str, block: str, chosen: tuple[str, str]) -> None:
    """A row chosen by an objective its part's final runs were not chosen by would show runs of another
    configuration, or none."""
    if part.study and chosen not in part.selections:
        made = ", ".join(f"{m} ({d})" for m, d in part.selections) or "nothing"
        raise ValueError(f"row {label!r}: block {block!r} chooses by {chosen[0]} ({chosen[1]}), but part "
                         f"{part.name!r} chose its final runs by {made} (its study's objective and "
                         "final.also_chosen_by)")


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame else pd.Series([None] * len(frame), index=frame.index, dtype=object)


def best_grid_trial(part: Part, method: str, chosen: tuple[str, str]) -> str | None:
    """The id of ``method``'s completed search trial best by ``chosen`` (metric, mode) on validation."""
    best = best_trials(grid_trials(part, method), *chosen)
    return str(best.iloc[0]["trial_id"]) if len(best) else None


def final_runs(part: Part, method: str, chosen: tuple[str, str]) -> pd.DataFrame:
    """The completed final runs of ``method`` in ``part`` retraining its search trial best by ``chosen``
    (metric, mode), as the trials table says now: the runs' tags only name the trial they retrain."""
    if not part.present:
        return pd.DataFrame()
    runs = part.frames.reruns
    best = best_grid_trial(part, method, chosen)
    if runs.empty or best is None:
        return runs.iloc[0:0]
    keep = ((_column(runs, KIND_TAG) == FINAL_KIND) & (_column(runs, METHOD) == method)
            & (_column(runs, "status") == TrialStatus.COMPLETED) & (_column(runs, SOURCE_TAG).astype(str) == best))
    runs = runs[keep.fillna(False).astype(bool)]
    return runs.sort_values(SEED) if SEED in runs else runs


def chosen_params(runs: pd.DataFrame) -> str:
    if runs.empty:
        return ""
    first = runs.iloc[0]
    params = [f"{c.removeprefix(HPARAM_PREFIX)} = {first[c]:g}" for c in sorted(runs.columns)
              if c.startswith(HPARAM_PREFIX) and isinstance(first[c], (int, float)) and not pd.isna(first[c])]
    return ", ".join(params) or "–"


EPOCH_SECONDS = ("time/train_s", "time/eval_s")  # what the trainer itself timed, per epoch


def run_seconds(runs: pd.DataFrame, epochs: pd.DataFrame | None = None) -> float:
    """Summed wall time of ``runs``: per run ended_at - started_at, but never less than its own epochs'
    timed seconds (``EPOCH_SECONDS`` in ``epochs``): reruns recorded by an older version after their Ray
    task returned carry the recording's moment as both times."""
    if runs.empty or "started_at" not in runs or "ended_at" not in runs:
        return math.nan
    spans = (runs["ended_at"] - runs["started_at"]).dt.total_seconds()
    if epochs is not None and not epochs.empty and set(EPOCH_SECONDS) <= set(epochs.columns):
        timed = epochs[list(EPOCH_SECONDS)].fillna(0).sum(axis=1).groupby(epochs["trial_id"]).sum()
        spans = pd.concat([spans, runs["trial_id"].map(timed)], axis=1).max(axis=1)
    spans = spans.dropna()
    return float(spans.sum()) if len(spans) else math.nan


# -- the rows ---------------------------------------------------------------------------------------------
@dataclass
class RowResult:
    label: str
    block: str
    part: str
    paper: dict[str, tuple[float, float]]
    acc: Interval | None = None
    ece: Interval | None = None
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
    check_choice(part, row["label"], chosen_in(protocol, row), chosen)
    runs = final_runs(part, row["method"], chosen)
    if runs.empty:
        return out
    out.acc = mean_ci(_column(runs, "test/acc").astype(float))
    out.ece = mean_ci(_column(runs, row.get("ece_metric", "test/ece")).astype(float))
    out.seeds = [int(s) for s in _column(runs, SEED).dropna()]
    out.params = chosen_params(runs)
    out.seconds = run_seconds(runs, part.frames.rerun_epochs)
    return out


NO_VALUES = "no values"  # runs there, the metric not recorded


def verdict(ours: Interval | None, paper: float) -> str:
    """Whether the paper's value lies in our 95 % interval (widened by the paper's rounding)."""
    if ours is None:
        return NOT_RUN
    if ours.n == 0:
        return NO_VALUES
    if ours.n < 2 or math.isnan(ours.half_width):
        return "no interval (1 seed)"
    low, high = ours.low - PAPER_ROUNDING, ours.high + PAPER_ROUNDING
    return "holds" if low <= paper <= high else "does not hold"


def fmt_interval(ours: Interval | None) -> str:
    if ours is None:
        return NOT_RUN
    if ours.n == 0:
        return NO_VALUES
    if math.isnan(ours.half_width):
        return f"{ours.mean:.4f} (n = {ours.n})"
    return f"{ours.mean:.4f} ± {ours.half_width:.4f} (n = {ours.n})"


def fmt_paper(value: tuple[float, float]) -> str:
    mean, spread = value
    return f"{mean:.3f}" if math.isnan(spread) else f"{mean:.3f} ± {spread:.3f}"


def fmt_seconds(seconds: float) -> str:
    if seconds is None or math.isnan(seconds):
        return "–"
    minutes = seconds / 60
    return f"{minutes:.1f} min" if minutes < 120 else f"{minutes / 60:.2f} h"


def claim_result(claim: dict[str, Any], results: dict[str, RowResult]) -> str:
    """A ranking claim checked on our means: ``winner`` is best among ``among``, or every row of ``among``
    beats the row ``beats``."""
    names = [*claim.get("among", []), *[claim[k] for k in ("winner", "beats") if k in claim]]
    missing = [n for n in dict.fromkeys(names) if not results[n].ran]
    if missing:
        return f"not decidable yet: {', '.join(missing)} {NOT_RUN}"
    metric, sign = claim["metric"], (1 if claim.get("best", "max") == "max" else -1)

    def mean(label: str) -> float:
        return getattr(results[label], metric).mean

    if "winner" in claim:
        best = max(claim["among"], key=lambda n: sign * mean(n))
        ok = best == claim["winner"]
        detail = ", ".join(f"{n}: {mean(n):.4f}" for n in claim["among"])
        return f"{'holds' if ok else 'does not hold'} here (best: {best}; {detail})"
    ref = mean(claim["beats"])
    losers = [n for n in claim["among"] if not sign * mean(n) > sign * ref]
    detail = ", ".join(f"{n}: {mean(n):.4f}" for n in claim["among"])
    verdict_ = "holds" if not losers else f"does not hold ({', '.join(losers)} not better)"
    return f"{verdict_} here ({claim['beats']}: {ref:.4f}; {detail})"


# -- the selective-classification panel ------------------------------------------------------------------
AURC_COLUMNS = ("test/acc", "test/aurc", "test/aurc_lognorm", "test/lognorm_p", "test/lognorm_fallback")


def grid_trials(part: Part, method: str) -> pd.DataFrame:
    """The completed search trials of ``method`` in ``part`` (one per grid value)."""
    if not part.present or part.frames.trials.empty:
        return pd.DataFrame()
    trials = part.frames.trials
    keep = (_column(trials, METHOD) == method) & (_column(trials, "status") == TrialStatus.COMPLETED)
    return trials[keep.fillna(False).astype(bool)]


def _num(row: pd.Series, key: str) -> float:
    value = row.get(key)
    return math.nan if value is None or pd.isna(value) else float(value)


def aurc_panel(protocol: Protocol, parts: dict[str, Part]) -> list[str]:
    spec = protocol.spec.get("aurc_panel")
    if not spec:
        return []
    lines = ["## Selective classification: label smoothing and logit normalisation", ""]
    if "selective" in protocol.spec:
        lines += [f"The claim: {protocol.spec['selective']['cite'].strip()}.", ""]
    lines += ["One grid trial per value (the search trials: one seed each, trained on 5/6 of the training data); "
              "AURC (lower is better) of the max softmax probability (`test/aurc`) and of the logit-normalised "
              "score (`test/aurc_lognorm`, p chosen on validation; fallback 1 = no p helped on validation, "
              "MSP used).", ""]
    base_spec, ls_spec = spec["baseline"], spec["smoothed"]
    base = grid_trials(parts[base_spec["part"]], base_spec["method"])
    smooth = grid_trials(parts[ls_spec["part"]], ls_spec["method"])
    param = HPARAM_PREFIX + ls_spec.get("param", "loss_params.alpha").removeprefix("loss_params.")
    header = ["| method | α | test acc | AURC (MSP) | AURC (logit-norm.) | logit-norm. − MSP | p | fallback |",
              "|---|---|---|---|---|---|---|---|"]
    table: list[str] = []
    ce_aurc = math.nan
    def empty(part: Part) -> str:
        return "not finished yet" if part.present else NOT_RUN

    if base.empty:
        table.append(f"| {base_spec['method']} | 0 | {empty(parts[base_spec['part']])} | | | | | |")
    for _, row in base.iterrows():
        ce_aurc = _num(row, "test/aurc")
        table.append(_aurc_line(base_spec["method"], "0", row))
    points: list[tuple[float, float, float]] = []
    if smooth.empty:
        table.append(f"| {ls_spec['method']} | grid | {empty(parts[ls_spec['part']])} | | | | | |")
    else:
        smooth = smooth.sort_values(param) if param in smooth else smooth
        for _, row in smooth.iterrows():
            alpha = _num(row, param)
            points.append((alpha, _num(row, "test/aurc"), _num(row, "test/aurc_lognorm")))
            table.append(_aurc_line(ls_spec["method"], f"{alpha:g}", row))
    lines += header + table + [""]
    metric, mode = choice(protocol, chosen_in(protocol, ls_spec))
    lines += [f"The final runs (the configuration chosen by `{metric}` ({mode}), several seeds; mean ± 95 % "
              "half-width; the difference is taken seed by seed):", "",
              "| method | chosen | seeds | test acc | AURC (MSP) | AURC (logit-norm.) | logit-norm. − MSP |",
              "|---|---|---|---|---|---|---|"]
    for s in (base_spec, ls_spec):
        runs = final_runs(parts[s["part"]], s["method"], choice(protocol, chosen_in(protocol, s)))
        if runs.empty:
            lines.append(f"| {s['method']} | | {NOT_RUN} | | | | |")
            continue
        raw, norm = _column(runs, "test/aurc").astype(float), _column(runs, "test/aurc_lognorm").astype(float)
        lines.append(f"| {s['method']} | {chosen_params(runs)} | {len(runs)} | "
                     f"{fmt_interval(mean_ci(_column(runs, 'test/acc').astype(float)))} | "
                     f"{fmt_interval(mean_ci(raw))} | {fmt_interval(mean_ci(norm))} | "
                     f"{fmt_interval(mean_ci(norm - raw))} |")
    lines += [""]
    lines += ["Checks on the grid trials (one seed per value, so directions, not significance):", ""]
    if base.empty or not points:
        missing = [f"{s['part']} {empty(parts[s['part']])}" for s, f in ((base_spec, base), (ls_spec, smooth))
                   if f.empty]
        lines.append(f"- not decidable yet: part {', part '.join(missing)}")
        return lines + [""]
    above = [a for a, r, _ in points if r > ce_aurc]
    lines.append(f"- LS raises AURC against CE ({ce_aurc:.4f}): at {len(above)} of {len(points)} values of α "
                 f"({', '.join(f'{a:g}' for a in above) or 'none'})")
    rises = sum(1 for (_, r0, _), (_, r1, _) in zip(points, points[1:]) if r1 > r0)
    lines.append(f"- AURC of LS grows with α: {rises} of {len(points) - 1} steps up the grid raise it")
    helped = [a for a, r, n in points if n < r]
    lines.append(f"- logit normalisation lowers LS's AURC at {len(helped)} of {len(points)} values of α")
    base_row = base.iloc[0]
    delta = _num(base_row, "test/aurc_lognorm") - _num(base_row, "test/aurc")
    lines.append(f"- for CE it changes AURC by {delta:+.4f} (logit-normalised − MSP)")
    return lines + [""]


def _aurc_line(method: str, alpha: str, row: pd.Series) -> str:
    acc, raw, norm = _num(row, "test/acc"), _num(row, "test/aurc"), _num(row, "test/aurc_lognorm")
    p, fallback = _num(row, "test/lognorm_p"), _num(row, "test/lognorm_fallback")
    return (f"| {method} | {alpha} | {acc:.4f} | {raw:.4f} | {norm:.4f} | {norm - raw:+.4f} | "
            f"{'–' if math.isnan(p) else f'{p:g}'} | {'–' if math.isnan(fallback) else f'{fallback:g}'} |")


# -- parts: progress, wall time, machine ------------------------------------------------------------------
def part_status(part: Part) -> str:
    if not part.present:
        return NOT_RUN
    trials, reruns = part.frames.trials, part.frames.reruns
    statuses = _column(trials, "status").value_counts().to_dict()
    expected = (part.study.get("search") or {}).get("num_samples")
    grid = f"grid: {statuses.get(TrialStatus.COMPLETED, 0)} completed"
    if expected is not None:
        grid += f" of {expected}"
    running = trials[_column(trials, "status") == TrialStatus.RUNNING]
    if len(running):
        epochs = (part.study.get("training") or {}).get("epochs")
        rows = part.frames.epochs
        done = []
        for trial_id in running["trial_id"]:
            mine = rows[rows["trial_id"] == trial_id] if not rows.empty else rows
            if mine.empty:
                done.append("0")
                continue
            last = mine.sort_values("epoch").iloc[-1]
            acc = _num(last, "val/acc")
            when = pd.Timestamp(last["written_at"]).strftime("%Y-%m-%d %H:%M UTC")
            done.append(f"{int(last['epoch'])}{f' of {epochs}' if epochs else ''} epochs"
                        + ("" if math.isnan(acc) else f", val/acc {acc:.4f}") + f", last at {when}")
        grid += f", {len(running)} unfinished when collected ({'; '.join(done)})"
    wanted = wanted_finals(part)
    finals = reruns[_column(reruns, KIND_TAG) == FINAL_KIND] if not reruns.empty else reruns
    done_finals = int((_column(finals, "status") == TrialStatus.COMPLETED).sum()) if not finals.empty else 0
    fin = f"final runs: {done_finals} completed" + (f" of {wanted}" if wanted else "")
    running_finals = int((_column(finals, "status") == TrialStatus.RUNNING).sum()) if not finals.empty else 0
    if running_finals:
        fin += f", {running_finals} running"
    return f"{grid}; {fin}"


def wanted_finals(part: Part) -> int | None:
    """How many final runs the part's study trains once its grid is over: ``seeds`` for each configuration its
    selections choose (a configuration chosen twice counts once); None while the grid runs, or without finals."""
    final = part.study.get("final") or {}
    trials = part.frames.trials
    expected = (part.study.get("search") or {}).get("num_samples")
    ended = int((_column(trials, "status") != "running").sum())
    if not final or (expected is not None and ended < expected):
        return None
    chosen = best_trials_by(trials, part.selections, int(final.get("top", 1)))
    return int(final.get("seeds", 0)) * len(chosen)


def part_timing(part: Part) -> tuple[str, str]:
    """(search wall time, final runs' wall time): the summed run times of the tables' started_at/ended_at (a
    running trial: up to its last epoch row's written_at)."""
    if not part.present:
        return "–", "–"
    trials = part.frames.trials.copy()
    if not trials.empty and not part.frames.epochs.empty:
        last = part.frames.epochs.groupby("trial_id")["written_at"].max()
        open_ = trials["ended_at"].isna()
        trials.loc[open_, "ended_at"] = trials.loc[open_, "trial_id"].map(last)
    reruns = part.frames.reruns
    finals = reruns[_column(reruns, KIND_TAG) == FINAL_KIND] if not reruns.empty else reruns
    return (fmt_seconds(run_seconds(trials, part.frames.epochs)),
            fmt_seconds(run_seconds(finals, part.frames.rerun_epochs)))


def part_throughput(part: Part) -> str:
    if not part.present:
        return "–"
    frames = [f for f in (part.frames.epochs, part.frames.rerun_epochs) if not f.empty and "time/images_per_s" in f]
    if not frames:
        return "–"
    values = pd.concat([f["time/images_per_s"] for f in frames]).dropna()
    return f"{values.median():.0f}" if len(values) else "–"


def machine(part: Part) -> str:
    env = part.meta.get("environment") or {}
    if not env:
        runs = part.frames.runs
        devices = sorted(str(d) for d in _column(runs, "config/device").dropna().unique())
        nodes = _column(runs, "sys/node_ip").dropna().nunique()
        return (f"no study.json; the tables: device {', '.join(devices) or '?'}"
                + (f", {nodes} Ray node(s)" if nodes else ""))
    driver, cluster, versions = env.get("driver", {}), env.get("cluster", {}), env.get("versions", {})
    bits = [f"{driver.get('cpu', '?')}, {driver.get('cores', '?')} cores"]
    if driver.get("gpu"):
        bits.append(f"GPU: {driver['gpu']}")
    if cluster:
        bits.append(f"Ray: {cluster.get('nodes', '?')} node(s), {cluster.get('cpus', 0):g} CPUs, "
                    f"{cluster.get('gpus', 0):g} GPUs")
    if versions:
        bits.append(f"torch {versions.get('torch', '?')}, Python {versions.get('python', '?')}")
    search, final = (sorted(str(d) for d in _column(frame, "config/device").dropna().unique())
                     for frame in (part.frames.trials, part.frames.reruns))
    if final and final != search:  # `smoothstudy final` run elsewhere, e.g. a GPU part's final runs on a CPU
        bits.append(f"final runs on device {', '.join(final)}, the search on {', '.join(search) or '?'}")
    return "; ".join(bits)


# -- the document -----------------------------------------------------------------------------------------
def deviations(protocol: Protocol, preset: str) -> list[str]:
    """The ``Deviations from the paper:`` comment block of a preset file, and the lines after it up to the
    first line that is not a comment (the precision note)."""
    path = protocol.repo_root / preset
    if not path.is_file():
        return [f"(preset {preset} not found)"]
    lines, inside = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            if inside:
                break
            continue
        text = line[1:].strip() if line[1:2] == " " and not line[2:3] == " " else line[1:]
        if line.startswith("# Deviations from the paper"):
            inside = True
            continue
        if inside:
            lines.append(text.rstrip())
    out: list[str] = []
    for line in lines:  # an item starts with "- " or "Word:"; other lines continue the item above
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("- "):
            out.append(stripped)
        elif re.match(r"^[A-Z][\w ]*:", stripped) or not out:
            out.append(f"- {stripped}")
        else:
            out[-1] += " " + stripped
    return out


def _flat(spec: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(spec, dict):
        return {prefix.rstrip("."): spec}
    out: dict[str, Any] = {}
    for key, value in spec.items():
        out.update(_flat(value, f"{prefix}{key}."))
    return out


def part_blocks(protocol: Protocol, part: str) -> list[str]:
    """The blocks whose objectives choose the configurations of the part's rows, in the blocks' order."""
    used = {chosen_in(protocol, row) for row in protocol.spec["rows"] if row["part"] == part}
    return [name for name in protocol.spec["blocks"] if name in used]


def home_block(protocol: Protocol, part: Part) -> str:
    """The block of the part's first objective (the block whose preset the part's study restricts), else the
    first block."""
    blocks = protocol.spec["blocks"]
    first = part.selections[:1]
    return next((name for name in blocks if [choice(protocol, name)] == first), next(iter(blocks)))


def _shown(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip()
    return str(value)


def differs_from_preset(protocol: Protocol, part: Part) -> str:
    """The settings (``section.key``) in which the part's study file, as run, differs from its home block's
    preset (``name`` aside)."""
    if not part.study:
        return "–"
    path = protocol.repo_root / protocol.spec["blocks"][home_block(protocol, part)]["preset"]
    if not path.is_file():
        return "(preset not found)"
    preset = _flat(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    mine = _flat(part.study)
    keys = sorted(k for k in set(preset) | set(mine) if k != "name" and preset.get(k) != mine.get(k))
    sections = list(dict.fromkeys(k.split(".")[0] if k.startswith("methods.") else k for k in keys))
    shown = []
    for key in sections:
        if key == "methods":
            shown.append(f"methods: {', '.join(part.study.get('methods') or {})}")
        else:
            shown.append(f"{key}: {_shown(mine.get(key, '–'))}")
    return "; ".join(shown) or "none"


def render(protocol_path: Path | str) -> str:
    """The reproduction's Markdown document, computed from the protocol file and the committed tables."""
    protocol = load_protocol(protocol_path)
    spec = protocol.spec
    parts = {name: load_part(protocol, name) for name in spec["parts"]}
    results = {row["label"]: row_result(protocol, parts, row) for row in spec["rows"]}
    rel_proto = protocol.rel(protocol.path)
    lines = [f"# {spec['title']}", "",
             f"<!-- Generated by `smoothstudy reproduce report {rel_proto}` from the tables under "
             f"`{protocol.rel(protocol.data_dir)}/`; do not edit by hand. -->", "",
             f"The paper: {spec['paper']['cite'].strip()}. Its numbers below are copied from its Table 1 "
             f"(`{rel_proto}`, `rows: paper:`); {spec['paper'].get('spread', '').strip()}. Every other "
             f"number is computed from the committed tables.", ""]

    lines += ["## Protocol", ""]
    lines += ["The paper chooses each method's parameter on a validation split of 1/6 of the training data, "
              "once for accuracy and once for ECE; each choice is a block of the table, with the preset that states "
              "the protocol:", ""]
    for name, block in spec["blocks"].items():
        lines.append(f"- **{name}** ({block.get('title', '')}): `{block['preset']}`, objective "
                     f"`{block['objective']}` ({block['mode']})")
    lines += ["", "The protocol runs in parts, one study each: its grid, each value trained once, then the "
              "configuration each of its blocks' objectives chooses retrained with seeds shared by every part (a "
              "configuration chosen by both, once; `final.also_chosen_by`). A row's numbers are the final runs "
              "of the method's grid trial best by its block's objective, chosen again here from the part's trials "
              "table.", "",
              "| part | blocks | study file | differs from its first objective's preset in | data | state |",
              "|---|---|---|---|---|---|"]
    for name, part in parts.items():
        study = spec["parts"][name]["study"]
        exists = (protocol.repo_root / study).is_file()
        data = f"`{protocol.rel(part.dir)}/`" if part.present else "–"
        lines.append(f"| {name} | {', '.join(part_blocks(protocol, name)) or '–'} | "
                     f"`{study}`{'' if exists else ' (not written yet)'} | "
                     f"{differs_from_preset(protocol, part)} | {data} | {part_status(part)} |")
    lines += [""]

    lines += ["## Deviations from the paper", ""]
    presets = list(dict.fromkeys(b["preset"] for b in spec["blocks"].values()))
    lines += [f"From the preset's comments (`{presets[0]}`):" if len(presets) == 1 else
              f"From the presets' comments (`{'`, `'.join(presets)}`; the same list in each):", ""]
    lines += deviations(protocol, presets[0])
    seeds = sorted({len(r.seeds) for r in results.values() if r.ran})
    lines += [f"- seeds here: {' or '.join(map(str, seeds)) + ' final runs per row' if seeds else 'no final runs yet'} "
              "(the paper: 10 resampled splits), the same training seeds for every part.", ""]

    lines += ["## Table 1, Fashion-MNIST: the paper's numbers and ours", "",
              "Ours: mean ± half-width of the 95 % Student-t interval over the final runs' seeds (n seeds). "
              "The paper's: mean ± its printed spread. A paper value **holds** here when it lies in our 95 % "
              f"interval widened by {PAPER_ROUNDING} (half a unit of its third decimal); with one seed there "
              "is no interval.", ""]
    for name, block in spec["blocks"].items():
        lines += [f"### {block.get('title', name)}", "",
                  "| row | paper acc | ours acc | acc | paper ECE | ours ECE | ECE | chosen | seeds | run time |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for row in spec["rows"]:
            r = results[row["label"]]
            if r.block != name:
                continue
            metric = row.get("ece_metric", "test/ece")
            ece_label = "" if metric == "test/ece" else f" (`{metric}`)"
            lines.append(
                f"| {r.label} | {fmt_paper(r.paper['acc'])} | {fmt_interval(r.acc)} | "
                f"{verdict(r.acc, r.paper['acc'][0])} | {fmt_paper(r.paper['ece'])} | "
                f"{fmt_interval(r.ece)}{ece_label} | {verdict(r.ece, r.paper['ece'][0])} | {r.params or '–'} | "
                f"{', '.join(map(str, r.seeds)) or '–'} | {fmt_seconds(r.seconds)} |")
        notes = [f"- {row['label']}: {row['note'].strip()}" for row in spec["rows"]
                 if row.get("note") and results[row["label"]].block == name]
        lines += [""] + (notes + [""] if notes else [])

    lines += ["## Which claims hold here", ""]
    cells = [(r.label, m, verdict(getattr(r, m), r.paper[m][0])) for r in results.values() for m in ("acc", "ece")]
    counts = pd.Series([v for _, _, v in cells]).value_counts().to_dict()
    lines += ["Numbers of the table (paper value in our interval): "
              + ", ".join(f"{k}: {counts.get(k, 0)}" for k in ("holds", "does not hold", "no interval (1 seed)", NOT_RUN)
                           + ((NO_VALUES,) if counts.get(NO_VALUES) else ()))
              + f" (of {len(cells)}).", ""]
    failing = [f"{label} {m}" for label, m, v in cells if v == "does not hold"]
    if failing:
        lines += ["Not reproduced: " + "; ".join(failing) + ".", ""]
    if spec.get("claims"):
        lines += ["The paper's statements, checked on our means:", ""]
        for claim in spec["claims"]:
            lines.append(f"- {claim['text']}: {claim_result(claim, results)}")
        lines += [""]

    lines += aurc_panel(protocol, parts)

    lines += ["## Wall time and machine", "",
              "Summed run times from the tables' `started_at`/`ended_at` (a running trial: up to its last epoch "
              "row), a run never counted shorter than its epochs' own `time/train_s` + `time/eval_s` (final runs "
              "recorded before the tool kept their times carry only the moment they were recorded); runs in "
              "parallel overlap, so these are compute times, not spans. Throughput: median of the "
              "epochs' `time/images_per_s`.", "",
              "| part | search | final runs | images/s | machine |", "|---|---|---|---|---|"]
    for name, part in parts.items():
        if not part.present:
            lines.append(f"| {name} | {NOT_RUN} | | | |")
            continue
        search, final = part_timing(part)
        lines.append(f"| {name} | {search} | {final} | {part_throughput(part)} | {machine(part)} |")
    lines += ["", "## Rebuilding this document", "",
              "Each part is a study (`smoothstudy run <study file>`, with its final runs); its tables are copied "
              "into the repository, finished or not, and the document is written from them alone:", "",
              "```",
              f"smoothstudy reproduce collect runs/<study> --into {protocol.rel(protocol.data_dir)}/<part>",
              f"smoothstudy reproduce report {rel_proto}",
              "```", "",
              "A test (`tests/analysis/test_reproduction.py`) rebuilds the document from the committed tables and "
              "fails when it differs from this file.", ""]
    return "\n".join(lines)


def write_report(protocol_path: Path | str, out: Path | str | None = None) -> Path:
    """Writes the document next to the protocol file (``<name>.md``) unless ``out`` names another path."""
    protocol_path = Path(protocol_path)
    target = Path(out) if out else protocol_path.with_suffix(".md")
    text = render(protocol_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target

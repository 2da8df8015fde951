"""One part's committed tables: which configuration each block chooses, the runs that test it, and how far
the part has got.

A part is one study, or one study per seed (its own split, grid and choice). Rows take their numbers from the
final runs of the configuration the block's objective chooses, recomputed here from each study's trials table
(the runs' tags only name the trial they retrain); a row with ``runs: trials`` takes the chosen search trial
itself, for a protocol whose tested model is the one the grid trained (temperature scaling on a held-out
split).
"""

from __future__ import annotations

import json
import math
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
from analysis.reproduction.protocol import NOT_RUN, SEED_FOLDER, Protocol

FROM_TRIALS = "trials"  # a row's ``runs``: the chosen search trial is the tested model


@dataclass
class Study:
    """One study's committed tables: the part's only study, or the part's study of one seed."""

    dir: Path
    frames: StudyFrames | None = None
    study: dict[str, Any] = field(default_factory=dict)  # study.yaml
    meta: dict[str, Any] = field(default_factory=dict)  # study.json
    seed: int | None = None  # the seed of a per-seed part's study

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


@dataclass
class Part:
    name: str
    dir: Path
    studies: list[Study]  # one, or one per seed (present or not)
    per_seed: bool = False

    @property
    def present(self) -> bool:
        return any(s.present for s in self.studies)

    @property
    def collected(self) -> list[Study]:
        return [s for s in self.studies if s.present]

    @property
    def study(self) -> dict[str, Any]:
        """The study file as run (a per-seed part: its first collected seed's)."""
        return next((s.study for s in self.collected), {})


def load_study(folder: Path, seed: int | None = None) -> Study:
    out = Study(folder, seed=seed)
    layout = StudyDir(folder)
    if not layout.parquet.is_dir():
        return out
    out.frames = study_frames(folder)
    if layout.study_file.is_file():
        out.study = yaml.safe_load(layout.study_file.read_text(encoding="utf-8")) or {}
    if layout.meta_file.is_file():
        out.meta = json.loads(layout.meta_file.read_text(encoding="utf-8"))
    return out


def load_part(protocol: Protocol, name: str) -> Part:
    folder = protocol.part_dir(name)
    seeds = protocol.part_seeds(name)
    if seeds is None:
        return Part(name, folder, [load_study(folder)])
    return Part(name, folder, [load_study(folder / SEED_FOLDER.format(seed=s), s) for s in seeds], per_seed=True)


def check_choice(part: Part, label: str, block: str, chosen: tuple[str, str], from_trials: bool = False) -> None:
    """A row chosen by an objective its part's final runs were not chosen by would show runs of another
    configuration, or none."""
    if from_trials:
        return
    for study in part.collected:
        if study.study and chosen not in study.selections:
            made = ", ".join(f"{m} ({d})" for m, d in study.selections) or "nothing"
            raise ValueError(f"row {label!r}: block {block!r} chooses by {chosen[0]} ({chosen[1]}), but part "
                             f"{part.name!r} chose its final runs by {made} (its study's objective and "
                             "final.also_chosen_by)")


def column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame else pd.Series([None] * len(frame), index=frame.index, dtype=object)


def grid_trials(study: Study, method: str) -> pd.DataFrame:
    """The completed search trials of ``method`` (one per grid value)."""
    if not study.present or study.frames.trials.empty:
        return pd.DataFrame()
    trials = study.frames.trials
    keep = (column(trials, METHOD) == method) & (column(trials, "status") == TrialStatus.COMPLETED)
    return trials[keep.fillna(False).astype(bool)]


def chosen_trial(study: Study, method: str, chosen: tuple[str, str]) -> pd.Series | None:
    """``method``'s completed search trial best by ``chosen`` (metric, mode) on validation."""
    best = best_trials(grid_trials(study, method), *chosen)
    return best.iloc[0] if len(best) else None


def final_runs(study: Study, method: str, chosen: tuple[str, str]) -> pd.DataFrame:
    """The completed final runs of ``method`` retraining its search trial best by ``chosen``."""
    if not study.present:
        return pd.DataFrame()
    runs = study.frames.reruns
    best = chosen_trial(study, method, chosen)
    if runs.empty or best is None:
        return runs.iloc[0:0]
    keep = ((column(runs, KIND_TAG) == FINAL_KIND) & (column(runs, METHOD) == method)
            & (column(runs, "status") == TrialStatus.COMPLETED)
            & (column(runs, SOURCE_TAG).astype(str) == str(best["trial_id"])))
    runs = runs[keep.fillna(False).astype(bool)]
    return runs.sort_values(SEED) if SEED in runs else runs


def tested_runs(part: Part, method: str, chosen: tuple[str, str], from_trials: bool = False) -> pd.DataFrame:
    """The runs whose test metrics are a row's numbers: in each of the part's studies, the final runs of the
    configuration ``chosen`` picks (or, ``from_trials``, that search trial itself); a per-seed part's rows carry
    their study's seed as ``split_seed``."""
    frames = []
    for study in part.collected:
        if from_trials:
            best = chosen_trial(study, method, chosen)
            runs = pd.DataFrame([best]) if best is not None else pd.DataFrame()
        else:
            runs = final_runs(study, method, chosen)
        if len(runs) and study.seed is not None:
            runs = runs.assign(split_seed=study.seed)
        frames.append(runs)
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def params_of(row: pd.Series) -> dict[str, float]:
    return {c.removeprefix(HPARAM_PREFIX): row[c] for c in sorted(row.index)
            if c.startswith(HPARAM_PREFIX) and isinstance(row[c], (int, float)) and not pd.isna(row[c])}


def chosen_params(runs: pd.DataFrame) -> str:
    """The chosen configuration: ``alpha = 0.2``; per seed, how often each was chosen (``alpha = 0.2 (×3),
    alpha = 0.1 (×2)``)."""
    if runs.empty:
        return ""
    shown = [", ".join(f"{k} = {v:g}" for k, v in params_of(row).items()) or "–" for _, row in runs.iterrows()]
    counts = pd.Series(shown).value_counts(sort=False)
    if len(counts) == 1:
        return counts.index[0]
    ordered = counts.sort_values(ascending=False, kind="stable")
    return ", ".join(f"{value} (×{n})" for value, n in ordered.items())


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


def num(row: pd.Series, key: str) -> float:
    value = row.get(key)
    return math.nan if value is None or pd.isna(value) else float(value)


# -- progress and timing ---------------------------------------------------------------------------------
def part_status(part: Part) -> str:
    if not part.present:
        return NOT_RUN
    if not part.per_seed:
        return study_status(part.studies[0])
    done = [s for s in part.collected]
    missing = [str(s.seed) for s in part.studies if not s.present]
    head = f"{len(done)} of {len(part.studies)} seeds collected" + (f" (not yet: {', '.join(missing)})"
                                                                   if missing else "")
    return head + "; " + "; ".join(f"seed {s.seed}: {study_status(s)}" for s in done)


def study_status(study: Study) -> str:
    trials, reruns = study.frames.trials, study.frames.reruns
    statuses = column(trials, "status").value_counts().to_dict()
    expected = (study.study.get("search") or {}).get("num_samples")
    grid = f"grid: {statuses.get(TrialStatus.COMPLETED, 0)} completed"
    if expected is not None:
        grid += f" of {expected}"
    running = trials[column(trials, "status") == TrialStatus.RUNNING]
    if len(running):
        epochs = (study.study.get("training") or {}).get("epochs")
        rows = study.frames.epochs
        done = []
        for trial_id in running["trial_id"]:
            mine = rows[rows["trial_id"] == trial_id] if not rows.empty else rows
            if mine.empty:
                done.append("0")
                continue
            last = mine.sort_values("epoch").iloc[-1]
            acc = num(last, "val/acc")
            when = pd.Timestamp(last["written_at"]).strftime("%Y-%m-%d %H:%M UTC")
            done.append(f"{int(last['epoch'])}{f' of {epochs}' if epochs else ''} epochs"
                        + ("" if math.isnan(acc) else f", val/acc {acc:.4f}") + f", last at {when}")
        grid += f", {len(running)} unfinished when collected ({'; '.join(done)})"
    if not study.study.get("final"):
        return grid
    finals = reruns[column(reruns, KIND_TAG) == FINAL_KIND] if not reruns.empty else reruns
    completed = finals[column(finals, "status") == TrialStatus.COMPLETED] if not finals.empty else finals
    chosen = chosen_trials(study)
    if chosen is None:
        fin = f"final runs: {len(completed)} completed"
    else:  # runs of a configuration the study chose once and no longer does (an older tie rule) are not counted
        # the study trains ``seeds`` runs of each configuration its selections choose (one chosen twice: once)
        wanted = int(study.study["final"].get("seeds", 0)) * len(chosen)
        mine = int(column(completed, SOURCE_TAG).isin(set(chosen["trial_id"])).sum())
        fin = f"final runs: {mine} completed" + (f" of {wanted}" if wanted else "")
        if len(completed) > mine:
            fin += f" (and {len(completed) - mine} of a configuration no longer chosen)"
    running_finals = int((column(finals, "status") == TrialStatus.RUNNING).sum()) if not finals.empty else 0
    if running_finals:
        fin += f", {running_finals} running"
    return f"{grid}; {fin}"


def chosen_trials(study: Study) -> pd.DataFrame | None:
    """The search trials the study's selections choose for final runs (each once); None while the grid runs,
    or without finals."""
    final = study.study.get("final") or {}
    trials = study.frames.trials
    expected = (study.study.get("search") or {}).get("num_samples")
    ended = int((column(trials, "status") != "running").sum())
    if not final or (expected is not None and ended < expected):
        return None
    return best_trials_by(trials, study.selections, int(final.get("top", 1)))


def part_seconds(part: Part) -> tuple[float, float]:
    """(search, final runs) summed run times of the part's studies: the tables' started_at/ended_at (a running
    trial: up to its last epoch row's written_at)."""
    search = final = 0.0
    for study in part.collected:
        trials = study.frames.trials.copy()
        if not trials.empty and not study.frames.epochs.empty:
            last = study.frames.epochs.groupby("trial_id")["written_at"].max()
            open_ = trials["ended_at"].isna()
            trials.loc[open_, "ended_at"] = trials.loc[open_, "trial_id"].map(last)
        reruns = study.frames.reruns
        finals = reruns[column(reruns, KIND_TAG) == FINAL_KIND] if not reruns.empty else reruns
        search += _zero(run_seconds(trials, study.frames.epochs))
        final += _zero(run_seconds(finals, study.frames.rerun_epochs))
    return (search, final) if part.present else (math.nan, math.nan)


def _zero(value: float) -> float:
    return 0.0 if math.isnan(value) else value


def part_throughput(part: Part) -> float:
    """Median images/s of the part's epochs (search trials and final runs)."""
    frames = [f for s in part.collected for f in (s.frames.epochs, s.frames.rerun_epochs)
              if not f.empty and "time/images_per_s" in f]
    if not frames:
        return math.nan
    values = pd.concat([f["time/images_per_s"] for f in frames]).dropna()
    return float(values.median()) if len(values) else math.nan

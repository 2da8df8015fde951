"""Benchmark 2: study overhead — wall time of a study against the sum of its trials' own times.

Runs the study through the real path (Ray Tune + OptunaSearch + ASHA + the MLflow and Parquet sinks) and
compares the wall time of ``run_study`` (Ray already started) with the time the trials themselves ran (Ray's ``time_total_s``
of each trial: data loading, training, per-epoch evaluation and checkpoints, final evaluation) packed at the
study's concurrency, ``c = min(max_concurrent, CPUs // resources.cpu)``.

Bound: wall / (sum of trial times / c) <= 1.10.
Theoretical minimum: 1.0 — and no schedule can beat max(sum / c, longest trial), printed as ``ideal``.
What the gap holds, printed per run from the driver's trial start/end times: start-up before the first trial
(Ray start is outside ``run_study`` and reported apart; inside it, the data check, the searcher and sinks, and
Ray starting a fresh worker process per slot that imports torch), idle slots between trials (the searcher's
suggestion, result and checkpoint handling on the driver), and the tail, where fewer trials than slots are
left. ``wall / zero-cost schedule`` compares with the same trials run in the same order on the first free
slot at no cost: that ratio is the orchestration's own cost; the rest of the main ratio is the tail, which
depends on how long the last trials happen to be.

Usage: python -m benchmarks.bench_study_overhead [--study studies/quick.yaml] [--runs 1] [--smoke-test]
``--smoke-test`` runs the quick study shortened (2 trials of 2 epochs on 1000 images, no transfer or shift
evaluation), written to a temporary study file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, header, load_average, stats

GOAL = 1.10


def trial_times(root: Path) -> dict[str, float]:
    """``time_total_s`` of each trial's last result, by trial id, from the ``result.json`` files Ray wrote
    under ``root``."""
    times = {}
    for path in root.rglob("result.json"):
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        if lines:
            last = json.loads(lines[-1])
            value = float(last.get("time_total_s", math.nan))
            if math.isfinite(value):
                times[str(last["trial_id"])] = value
    return times


def list_schedule(durations: list[float], slots: int) -> float:
    """Makespan of the trials run in this order, each on the first free slot, with no cost between them:
    what a zero-overhead orchestrator gets from the same trials in the same order (tail included)."""
    free = [0.0] * slots
    for d in durations:
        i = free.index(min(free))
        free[i] += d
    return max(free, default=0.0)


def slot_breakdown(starts: list[float], ends: list[float], slots: int, t_begin: float, t_end: float) -> dict:
    """Where the study's wall time went, from the driver's trial start/end times (Parquet's trials table):
    ``startup`` before the first trial starts; slot-seconds left idle ``between`` trials (before the last
    trial starts) and in the ``tail`` (after it, fewer trials than slots remain); ``finish`` after the last
    trial ends. ``slot_idle_s / slots`` is what idle slots add to the wall time."""
    events = sorted([(t, 1) for t in starts] + [(t, -1) for t in ends])  # at equal times, ends first
    last_start = max(starts)
    running, now, between, tail = 0, min(starts), 0.0, 0.0
    for t, step in events:
        idle = max(0, slots - running)
        between += idle * max(0.0, min(t, last_start) - now)
        tail += idle * max(0.0, t - max(now, last_start))
        running, now = running + step, t
    return {"startup_s": min(starts) - t_begin, "between_slot_s": between, "tail_slot_s": tail,
            "finish_s": t_end - max(ends)}


def driver_times(study_root: Path) -> list[tuple[str, float, float | None]]:
    """(trial id, start, end) as the driver saw them (Parquet's trials table), in start order."""
    import pandas as pd

    from analysis.results import read_trials

    trials = read_trials(study_root / "parquet").dropna(subset=["started_at"]).sort_values("started_at")
    return [(row.trial_id, row.started_at.timestamp(), None if pd.isna(row.ended_at) else row.ended_at.timestamp())
            for row in trials.itertuples()]


def shortened_study(study_file: Path, out: Path) -> Path:
    import yaml

    spec = yaml.safe_load(study_file.read_text())
    spec["data"]["subset"] = 1000
    spec["training"]["epochs"] = 2
    spec.setdefault("evaluation", {}).update(probe_max_train=500, transfer_dataset=None, shift_severity=0)
    spec["methods"] = dict(list(spec["methods"].items())[:2])  # per_method asks for a trial per method at least
    spec["search"]["num_samples"] = 2
    spec["search"]["n_startup_trials"] = 2
    out.write_text(yaml.safe_dump(spec))
    return out


def one_study(study_file: Path, storage: Path) -> dict:
    from search_spaces.study_file import load_study
    from study.cluster import connect
    from study.runner import run_study

    spec = load_study(study_file)
    t0 = time.perf_counter()
    connect(None)  # started here so that run_study's wall time holds no Ray start
    ray_start = time.perf_counter() - t0
    import ray

    cpus = ray.cluster_resources().get("CPU", 1)
    slots = max(1, min(spec.search.max_concurrent, int(cpus // spec.resources.cpu)))
    t0, began = time.perf_counter(), time.time()
    study = run_study(study_file, storage, force=True, echo=lambda line: print("  " + line))
    wall = time.perf_counter() - t0
    seen = driver_times(study.root)
    by_id = trial_times(study.root)
    times = list(by_id.values())
    packed = sum(times) / slots
    ideal = max(packed, max(times, default=0.0))
    scheduled = list_schedule([by_id[t] for t, _, _ in seen if t in by_id], slots)
    starts, ends = [s for _, s, _ in seen], [e for _, _, e in seen if e is not None]
    errors = len(list(study.root.rglob("error.txt")))
    return {"wall_s": wall, "ray_start_s": ray_start, "trials": len(times), "errors": errors, "slots": slots,
            "sum_trial_s": sum(times), "longest_trial_s": max(times, default=0.0), "packed_s": packed,
            "ideal_s": ideal, "ratio": wall / packed if packed else math.nan,
            "ratio_to_ideal": wall / ideal if ideal else math.nan, "schedule_s": scheduled,
            "ratio_to_schedule": wall / scheduled if scheduled else math.nan, "load_after": load_average(),
            **slot_breakdown(starts, ends, slots, began, began + wall)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=ROOT / "studies" / "quick.yaml")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--storage", type=Path, default=None, help="default: a temporary directory")
    parser.add_argument("--smoke-test", action="store_true", help="the study shortened to seconds")
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    print(header("bench_study_overhead: study wall time vs its trials' own times at the same concurrency",
                 f"wall / (sum of trial times / concurrency) <= {GOAL}", "1.0 (and wall >= max(sum/c, longest))"))
    print(f"study: {args.study}{' (shortened)' if args.smoke_test else ''}  runs: {args.runs}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        study_file = shortened_study(args.study, Path(tmp) / "study.yaml") if args.smoke_test else args.study
        for i in range(args.runs):
            storage = args.storage or Path(tmp) / f"run{i}"
            row = one_study(study_file, storage)
            rows.append(row)
            print(f"run {i + 1}: wall {row['wall_s']:.1f} s (ray start {row['ray_start_s']:.1f} s apart)  "
                  f"{row['trials']} trials ({row['errors']} errors) on {row['slots']} slots: sum {row['sum_trial_s']:.1f} s, "
                  f"longest {row['longest_trial_s']:.1f} s, sum/c {row['packed_s']:.1f} s, ideal {row['ideal_s']:.1f} s"
                  f"  -> ratio {row['ratio']:.3f}, to ideal {row['ratio_to_ideal']:.3f}  (load after: {row['load_after']})")
            print(f"  where the wall time beyond sum/c went: start-up {row['startup_s']:.1f} s (to the first trial's start), "
                  f"idle slots between trials {row['between_slot_s']:.1f} slot-s, in the tail {row['tail_slot_s']:.1f} slot-s, "
                  f"after the last trial {row['finish_s']:.1f} s")
            print(f"  the same trials in the same order with no orchestration cost: {row['schedule_s']:.1f} s "
                  f"-> wall / that schedule {row['ratio_to_schedule']:.3f} (the rest of the ratio is the trials' tail)")
    ratio = stats([r["ratio"] for r in rows])
    to_ideal = stats([r["ratio_to_ideal"] for r in rows])
    to_schedule = stats([r["ratio_to_schedule"] for r in rows])
    print(f"wall / (sum/c): {ratio.describe()}")
    print(f"wall / ideal:   {to_ideal.describe()}")
    print(f"wall / zero-cost schedule of the same trials: {to_schedule.describe()}")
    verdict = "within" if ratio.median <= GOAL else "OVER"
    print(f"result: median ratio {ratio.median:.3f}: {verdict} the {GOAL} goal")
    return {"runs": rows, "ratio": ratio.as_dict(), "ratio_to_ideal": to_ideal.as_dict(),
            "ratio_to_schedule": to_schedule.as_dict()}


if __name__ == "__main__":
    main()

"""Benchmark: what one trial's results cost Ray Tune's driver, with every metric a number of the result
(``plain``) and with all but the objective packed into one value (``packed``, what ``report_epochs`` hands
Tune).

Tune's ``Trial.update_last_result`` keeps, for every number of a result, a running max, min, mean and last-5
and last-10 windows, per trial and for the whole study, and its experiment snapshot serialises them (the JSON
is cached on the trial until its next result). Measured in-process on Tune's own ``Trial`` with results of
a real trial's shape (``trainables.synthetic``: ~50 metrics, ``epoch``, ``status``, Tune's own fields):
- ``update_us``: driver time per result in ``update_last_result`` (median of ``--runs`` rounds);
- ``snapshot_ms``: serialising one trial's run metadata for the experiment snapshot (``get_json_state``);
- ``kb_per_trial``: memory still held per trial (tracemalloc, after ``gc``) by ``--trials`` trials of
  ``--epochs`` results each and one snapshot, i.e. what the driver keeps for the rest of the study.

Bound: packed holds under a quarter of plain's memory per trial and spends under a third of its time per result.
Theoretical minimum: a result with no number at all (``bare``: Tune's own fields only), measured alongside.

Usage: python -m benchmarks.bench_tune_result [--trials 500] [--epochs 10] [--runs 5] [--json PATH] [--smoke-test]
"""

from __future__ import annotations

import argparse
import gc
import json
import time
import tracemalloc
from pathlib import Path
from typing import Any

from benchmarks.common import header, stats
from trainables.synthetic import synthetic_metrics
from trainables.tune_reporting import pack_result

OBJECTIVE = "val/acc"


def tune_fields(trial: int, epoch: int) -> dict[str, Any]:
    """The numbers Tune adds to every result itself."""
    now = time.time()
    return {"timestamp": int(now), "training_iteration": epoch, "time_this_iter_s": 1.0,
            "time_total_s": float(epoch), "time_since_restore": float(epoch), "iterations_since_restore": epoch,
            "pid": 1000 + trial, "date": "2026-11-28_00-00-00", "hostname": "driver", "node_ip": "10.0.0.1",
            "trial_id": f"t{trial:05d}", "done": False, "checkpoint_dir_name": None, "should_checkpoint": False}


def make_result(shape: str, trial: int, epoch: int) -> dict[str, Any]:
    if shape == "bare":
        return tune_fields(trial, epoch)
    metrics = {"epoch": epoch, "status": "running", **synthetic_metrics(trial, epoch)}
    result = pack_result(metrics, (OBJECTIVE,)) if shape == "packed" else metrics
    return {**result, **tune_fields(trial, epoch)}


def new_trial():
    from ray.tune.experiment import Trial

    return Trial("synthetic", stub=True)


def update_us(shape: str, epochs: int) -> float:
    trial, results = new_trial(), [make_result(shape, 0, e) for e in range(1, epochs + 1)]
    t0 = time.perf_counter()
    for result in results:
        trial.update_last_result(result)
    return (time.perf_counter() - t0) / epochs * 1e6


def snapshot_ms(shape: str, epochs: int) -> float:
    trial = new_trial()
    for e in range(1, epochs + 1):
        trial.update_last_result(make_result(shape, 0, e))
    t0 = time.perf_counter()
    trial.run_metadata.get_json_state()
    return (time.perf_counter() - t0) * 1e3


def kb_per_trial(shape: str, trials: int, epochs: int) -> float:
    gc.collect()
    tracemalloc.start()
    kept = []
    for i in range(trials):
        trial = new_trial()
        for e in range(1, epochs + 1):
            trial.update_last_result(make_result(shape, i, e))
        trial.run_metadata.get_json_state()
        kept.append(trial)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return held / trials / 1024


def measure(shape: str, trials: int, epochs: int, runs: int) -> dict[str, Any]:
    updates = stats([update_us(shape, max(epochs, 50)) for _ in range(runs)])
    snapshots = stats([snapshot_ms(shape, epochs) for _ in range(runs)])
    return {"update_us": updates.as_dict(), "snapshot_ms": snapshots.as_dict(),
            "kb_per_trial": kb_per_trial(shape, trials, epochs)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--smoke-test", action="store_true", help="20 trials of 3 results, 2 runs")
    args = parser.parse_args(argv)
    if args.smoke_test:
        args.trials, args.epochs, args.runs = 20, 3, 2
    print(header("Tune's driver cost of a trial's results: plain vs packed metrics",
                 "packed: < 1/4 of plain's memory held per trial, < 1/3 of its update time",
                 "a result of Tune's own fields only (bare)"))
    print(f"{args.trials} trials x {args.epochs} results, {len(synthetic_metrics(0, 1))} metrics a result, "
          f"{args.runs} runs")
    out: dict[str, Any] = {}
    for shape in ("plain", "packed", "bare"):
        row = out[shape] = measure(shape, args.trials, args.epochs, args.runs)
        print(f"{shape:>6}: update {row['update_us']['median']:7.1f} us/result   snapshot "
              f"{row['snapshot_ms']['median']:6.3f} ms/trial   held {row['kb_per_trial']:6.1f} kB/trial")
    out["packed_vs_plain"] = {"update": out["packed"]["update_us"]["median"] / out["plain"]["update_us"]["median"],
                              "kb_per_trial": out["packed"]["kb_per_trial"] / out["plain"]["kb_per_trial"]}
    print(f"result: packed holds {out['packed_vs_plain']['kb_per_trial']:.2f} x plain's memory per trial and "
          f"spends {out['packed_vs_plain']['update']:.2f} x its driver time per result")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()

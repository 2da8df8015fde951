"""Benchmark 4: per-epoch reporting — results per second the driver sustains with the MLflow and Parquet sinks.

Three layers, synthetic results shaped like a real trial's (an epoch result of ~20 keys, a final result of
~60, no artifacts):
1. each sink alone and both together, driven directly (``trial_started``, ``epoch`` × E, ``trial_ended``);
2. both through ``SinkCallback`` (the Tune callback, called with stand-in trial objects: no Ray);
3. ``--tune`` (default on outside ``--smoke-test``): a real Tune run of a trainable that does nothing but
   report (with a checkpoint of ``--checkpoint-mb``), with the callback and without: the driver's whole
   per-result cost, Ray's included, and the trainable-side cost of one report.
Derived: the report interval that keeps the overhead under 2%: the driver is busy ``n · c`` seconds per
interval for ``n`` concurrent trials and ``c`` s/result, and each trial loses ``c_trial`` per report, so
``interval >= 50 · max(n · c, c_trial)``; for an epoch time T, report every ceil(interval / T) epochs.

Bound: reporting overhead < 2% of training time.
Theoretical minimum: appending a row to an in-memory list (printed as the floor, ~1 µs).

Usage: python -m benchmarks.bench_reporting [--trials 20] [--epochs 50] [--runs 3] [--concurrency 2]
       [--epoch-time 5] [--no-tune] [--smoke-test]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from benchmarks.common import header, load_average, stats

OVERHEAD = 0.02
EPOCH_KEYS = ("train/loss", "train/acc", "train/lr", "val/acc", "val/nll", "val/ece", "val/aurc", "val/eaurc",
              "val/cov_at_5", "val/brier", "val/entropy", "val/msp", "time/train_s", "time/eval_s",
              "time/images_per_s")
FINAL_PREFIXES = ("test", "val", "probe", "shift", "transfer")
FINAL_NAMES = ("acc", "nll", "ece", "ece_ts", "aurc", "eaurc", "aurc_lognorm", "cov_at_5", "brier", "auroc",
               "entropy", "msp")


def epoch_result(epoch: int) -> dict[str, float]:
    return {"epoch": epoch, **{k: 1.0 / (epoch + i + 1) for i, k in enumerate(EPOCH_KEYS)}}


def final_result(epoch: int) -> dict[str, float]:
    out = epoch_result(epoch)
    out.update({f"{p}/{n}": 0.5 + 0.01 * i for i, (p, n) in
                enumerate((p, n) for p in FINAL_PREFIXES for n in FINAL_NAMES)})
    return out


def trial_config(i: int) -> dict:
    return {"loss": "ls", "loss_params.alpha": 0.01 * (i + 1), "lr": 0.05, "epochs": 0, "batch_size": 128,
            "model": "mlp", "dataset": "fashion_mnist", "seed": 0}


def make_sinks(kind: str, root: Path) -> list:
    from study.sinks.mlflow_sink import MlflowSink
    from study.sinks.parquet import ParquetSink

    sinks = []
    if kind in ("parquet", "both"):
        sinks.append(ParquetSink(root / "parquet", "bench"))
    if kind in ("mlflow", "both"):
        sinks.append(MlflowSink(f"sqlite:///{root / 'mlflow.db'}", experiment="bench", study_name="bench",
                                study_file=None, settings={}))
    return sinks


def drive_sinks(sinks: list, trials: int, epochs: int) -> tuple[float, float]:
    """(seconds per epoch result, seconds per trial for its start and end)."""
    from analysis.core.statuses import TrialStatus
    from study.sinks.base import TrialEnd, TrialStart

    epoch_s = ends_s = 0.0
    for i in range(trials):
        tid = f"t{i:04d}"
        t0 = time.perf_counter()
        for sink in sinks:
            sink.trial_started(TrialStart(tid, trial_config(i), tags={"kind": "trial"}))
        ends_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        for e in range(1, epochs + 1):
            metrics = epoch_result(e)
            for sink in sinks:
                sink.epoch(tid, e, metrics)
        epoch_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        for sink in sinks:
            sink.trial_ended(TrialEnd(tid, TrialStatus.COMPLETED, "", final_result(epochs)))
        ends_s += time.perf_counter() - t0
    for sink in sinks:
        sink.close()
    return epoch_s / (trials * epochs), ends_s / trials


def drive_callback(root: Path, trials: int, epochs: int) -> tuple[float, float]:
    from study.callback import SinkCallback

    callback = SinkCallback(lambda: make_sinks("both", root), base={"model": "mlp", "lr": 0.05}, epochs=epochs,
                            echo=lambda line: None)
    epoch_s = ends_s = 0.0
    for i in range(trials):
        trial = SimpleNamespace(trial_id=f"t{i:04d}", config={"loss": "ls", "ls": {"alpha": 0.1}},
                                last_result=None, checkpoint=None)
        t0 = time.perf_counter()
        callback.on_trial_start(0, [], trial)
        ends_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        for e in range(1, epochs + 1):
            callback.on_trial_result(0, [], trial, epoch_result(e))
        epoch_s += time.perf_counter() - t0
        trial.last_result = final_result(epochs)
        t0 = time.perf_counter()
        callback.on_trial_complete(0, [], trial)
        ends_s += time.perf_counter() - t0
    callback.on_experiment_end([])
    return epoch_s / (trials * epochs), ends_s / trials


def reporter(config: dict) -> None:
    """A trainable that only reports: ``reports`` results, each with a checkpoint of ``checkpoint_mb``."""
    import torch
    from ray import tune

    blob = torch.zeros(int(config["checkpoint_mb"] * 2**20 // 4))
    last = 0.0
    for e in range(1, config["reports"] + 1):
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            torch.save({"w": blob}, Path(d) / "state.pt")
            tune.report({**epoch_result(e), "time/report_s": last}, checkpoint=tune.Checkpoint.from_directory(d))
        last = time.perf_counter() - t0


def tune_rates(root: Path, trials: int, reports: int, checkpoint_mb: float, concurrency: int,
               with_callback: bool) -> dict[str, float]:
    from ray import tune

    from study.callback import SinkCallback

    callbacks = [SinkCallback(lambda: make_sinks("both", root), base={}, epochs=reports, echo=lambda line: None)]
    tuner = tune.Tuner(
        tune.with_resources(reporter, {"cpu": 1}),
        param_space={"loss": "ce", "reports": reports, "checkpoint_mb": checkpoint_mb},  # the callback reads "loss"
        tune_config=tune.TuneConfig(num_samples=trials, max_concurrent_trials=concurrency),
        run_config=tune.RunConfig(name="reporting", storage_path=str(root / "ray"), verbose=0,
                                  callbacks=callbacks if with_callback else [],
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=2)),
    )
    t0 = time.perf_counter()
    grid = tuner.fit()
    wall = time.perf_counter() - t0
    report_s = [r.metrics_dataframe["time/report_s"].iloc[1:].median() for r in grid]
    busy = [r.metrics.get("time_total_s", math.nan) for r in grid]
    return {"results_per_s": trials * reports / wall, "trial_report_s": stats(report_s).median,
            "wall_s": wall, "trial_busy_s": sum(busy)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=50, help="epoch results per synthetic trial")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2, help="concurrent trials for the derived interval")
    parser.add_argument("--epoch-time", type=float, default=5.0, help="seconds per epoch for the derived interval")
    parser.add_argument("--checkpoint-mb", type=float, default=4.0, help="checkpoint size in the Tune run")
    parser.add_argument("--tune", action=argparse.BooleanOptionalAction, default=None,
                        help="also the real Tune run (default: on, off with --smoke-test)")
    parser.add_argument("--smoke-test", action="store_true",
                        help="2 trials × 5 epochs, 1 run, Parquet alone and the callback only, no Tune run")
    args = parser.parse_args(argv)
    if args.smoke_test:
        args.trials, args.epochs, args.runs = 2, 5, 1
    use_tune = (not args.smoke_test) if args.tune is None else args.tune
    print(header("bench_reporting: results/s the driver sustains with the MLflow and Parquet sinks",
                 f"reporting overhead < {OVERHEAD:.0%} of training time (gives the report interval)",
                 "appending a result to an in-memory list (~1 µs)"))
    print(f"synthetic: {args.trials} trials × {args.epochs} epoch results ({len(EPOCH_KEYS)} metrics each), "
          f"final result {len(final_result(1))} metrics, runs {args.runs}")
    floor = []
    t0 = time.perf_counter()
    for e in range(10000):
        floor.append(epoch_result(e))
    print(f"floor: {(time.perf_counter() - t0) / 10000 * 1e6:.1f} µs per in-memory result (building it included)")

    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.smoke_test:
            drive_sinks(make_sinks("both", Path(tmp) / "warmup"), 1, 3)  # first-use costs (imports, schema) untimed
        for kind in ("parquet", "callback") if args.smoke_test else ("parquet", "mlflow", "both", "callback"):
            per_result, per_trial = [], []
            for r in range(args.runs):
                root = Path(tmp) / f"{kind}{r}"
                if kind == "callback":
                    e_s, t_s = drive_callback(root, args.trials, args.epochs)
                else:
                    e_s, t_s = drive_sinks(make_sinks(kind, root), args.trials, args.epochs)
                per_result.append(e_s)
                per_trial.append(t_s)
            rate = stats([1 / s for s in per_result])
            trial = stats(per_trial)
            out[kind] = {"results_per_s": rate.as_dict(), "start_end_s": trial.as_dict()}
            print(f"{kind:<9} epoch results/s: {rate.describe(fmt='{:,.0f}')}   trial start+end: "
                  f"{trial.describe(' s')}  (load: {load_average()})")
        c_driver = 1 / out["callback"]["results_per_s"]["median"]
        c_trial = 0.0
        if use_tune:
            from study.cluster import connect

            os.environ.setdefault("RAY_DEDUP_LOGS", "0")
            connect(None)
            reports = args.epochs
            for label, with_cb in (("tune, no sinks", False), ("tune + sinks", True)):
                rows = [tune_rates(Path(tmp) / f"tune{int(with_cb)}{r}", args.concurrency * 2, reports,
                                   args.checkpoint_mb, args.concurrency, with_cb) for r in range(args.runs)]
                rate = stats([row["results_per_s"] for row in rows])
                report = stats([row["trial_report_s"] for row in rows])
                out[label] = {"results_per_s": rate.as_dict(), "trial_report_s": report.as_dict()}
                print(f"{label:<15} results/s: {rate.describe(fmt='{:,.1f}')}   trainable side per report "
                      f"({args.checkpoint_mb:g} MB checkpoint): {report.describe(' s')}  (load: {load_average()})")
            c_driver = max(c_driver, 1 / out["tune + sinks"]["results_per_s"]["median"])
            c_trial = out["tune + sinks"]["trial_report_s"]["median"]
    interval = max(args.concurrency * c_driver, c_trial) / OVERHEAD
    every = max(1, math.ceil(interval / args.epoch_time))
    print(f"driver cost per result {c_driver * 1e3:.2f} ms, trainable cost per report {c_trial * 1e3:.2f} ms"
          + ("" if use_tune else " (not measured: no Tune run)"))
    print(f"result: with {args.concurrency} concurrent trials the report interval must be >= {interval:.2f} s "
          f"for < {OVERHEAD:.0%} overhead: with {args.epoch_time:g} s epochs, report every {every} epoch(s)")
    return {**out, "driver_s_per_result": c_driver, "trial_s_per_report": c_trial, "min_interval_s": interval,
            "report_every_epochs": every}


if __name__ == "__main__":
    main()

"""Benchmark: AURC, E-AURC, coverage at 5% risk and ECE together on 1M samples.

Bound: at most 0.5 s on the project's CPU for the four metrics together (one call of
``selective_summary``, which sorts once, plus ``ece``). Theoretical minimum: one O(n log n) sort of the
scores plus a few O(n) passes; the script times a bare ``np.argsort`` of the same scores as that reference.
Two score sets: continuous scores (no ties) and a tie-heavy one (30% of the scores exactly 1.0, like
saturated float32 MSPs), which takes the tie-averaging path. Also times the whole end-of-trial
``final_metrics`` on 10k-sample splits with 1024-wide features (the quick study's MLP), a shifted test copy
and both probes (same data and transfer): the metric part of a trial's final evaluation, forward passes
excluded (``bench_final_eval.py`` measures a quick-study trial's whole final evaluation against its time).

Usage: python -m benchmarks.bench_metrics [--n 1000000] [--runs 7] [--trial-d 1024] [--smoke-test]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

from analysis.facts import cpu_model
from analysis.metrics.calibration import ece
from analysis.metrics.evaluation import Outputs, final_metrics
from analysis.metrics.selective import selective_summary

BOUND_S = 0.5



def time_runs(fn, runs: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def describe(name: str, times: list[float]) -> str:
    med = statistics.median(times)
    return (
        f"{name:<44} median {med * 1e3:8.1f} ms   min {min(times) * 1e3:8.1f}   max {max(times) * 1e3:8.1f}"
    )


def selective_inputs(n: int, tie_share: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    conf = rng.beta(5, 1.5, n)
    conf[rng.random(n) < tie_share] = 1.0
    correct = rng.random(n) < conf
    return conf, correct


def four_metrics(conf: np.ndarray, correct: np.ndarray) -> dict[str, float]:
    out = selective_summary(conf, correct, risk=0.05)
    out["ece"] = ece(conf, correct)
    return out


def trial_outputs(n: int, k: int, d: int, seed: int) -> Outputs:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = rng.normal(size=(n, k))
    z[np.arange(n), y] += rng.uniform(0, 4, n)
    f = rng.normal(size=(n, d)) + np.eye(k, d)[y] * 2
    return Outputs(
        torch.tensor(z * 2, dtype=torch.float32), torch.tensor(y), torch.tensor(f, dtype=torch.float32)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--trial-n", type=int, default=10_000, help="val/test size for the final_metrics timing"
    )
    parser.add_argument(
        "--trial-d", type=int, default=1024, help="feature width (the quick study's MLP has 1024)"
    )
    parser.add_argument("--smoke-test", action="store_true", help="tiny sizes, seconds; checks it runs")
    args = parser.parse_args(argv)
    if args.smoke_test:
        args.n, args.runs, args.trial_n, args.trial_d = 20_000, 2, 500, 64

    cores = len(os.sched_getaffinity(0))
    print(f"cpu: {cpu_model()}  cores available: {cores}  torch threads: {torch.get_num_threads()}")
    print(f"python {platform.python_version()}  torch {torch.__version__}  numpy {np.__version__}")
    print(f"n = {args.n:,}  runs = {args.runs} (after one warm-up)  bound = {BOUND_S} s for the four metrics")

    worst = 0.0
    for label, tie_share in (("continuous scores", 0.0), ("30% ties at 1.0", 0.3)):
        conf, correct = selective_inputs(args.n, tie_share)
        times = time_runs(lambda conf=conf, correct=correct: four_metrics(conf, correct), args.runs)
        worst = max(worst, statistics.median(times))
        print(describe(f"AURC+E-AURC+cov@5+ECE, {label}", times))
        print(
            describe(
                f"  reference: np.argsort alone, {label}", time_runs(lambda c=conf: np.argsort(-c), args.runs)
            )
        )

    val, test, train, shifted, transfer_train, transfer_test = (
        trial_outputs(args.trial_n, 10, args.trial_d, s) for s in range(1, 7)
    )
    runs = max(1, min(args.runs, 3))
    times = time_runs(
        lambda: final_metrics(
            val,
            test,
            train=train,
            shifted_test=shifted,
            transfer_train=transfer_train,
            transfer_test=transfer_test,
        ),
        runs,
    )
    print(describe(f"final_metrics (+shift, 2 probes), n={args.trial_n:,}, K=10, D={args.trial_d}", times))

    verdict = "within" if worst <= BOUND_S else "OVER"
    print(f"result: worst median {worst:.3f} s for the four metrics on {args.n:,} samples: {verdict} bound")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark 6: cluster costs — starting a two-node local Ray cluster, and resuming a killed study.

1. Cluster start: wall time of ``ray start --head`` plus ``ray start --address`` of a second node (its own
   loopback IP, 1 CPU each, token auth on), as the cluster test starts it; the two commands return once the
   node has registered with the head.
2. Resume: a tiny study (digits, ``--trials`` trials of ``--epochs`` epochs, 2 at a time) is started, its
   driver is killed with SIGKILL after ``--kill-after`` epoch results, then ``smoothstudy resume`` runs it to
   the end. Measured: seconds from the start of ``resume`` to the first new epoch result in Parquet (the
   time a user waits for the study to move again), and the whole resume's wall time.

Bound: none fixed (the record is what counts).
Theoretical minimum: cluster start >= 2 × the start of one raylet + GCS; resume >= a Ray start + one
trial's restore from its checkpoint + one epoch.

Usage: python -m benchmarks.bench_cluster [--runs 3] [--trials 4] [--epochs 4] [--kill-after 3] [--smoke-test]
``--smoke-test``: one cluster start, one resume of a 2-trial study.
"""

from __future__ import annotations

import argparse
import signal
import tempfile
import time
from pathlib import Path

from benchmarks.common import header, load_average, stats


def cluster_start_s() -> float:
    from benchmarks.harness import TwoNodeCluster

    cluster = TwoNodeCluster().start()
    cluster.stop()
    return cluster.start_s


def resume_s(trials: int, epochs: int, kill_after: int) -> dict[str, float]:
    from benchmarks.harness import (
        epoch_parts,
        kill_processes_under,
        ray_env,
        run_cli,
        start_driver,
        tiny_study,
        wait_for,
    )

    with tempfile.TemporaryDirectory(prefix="bench_resume") as tmp:
        tmp_path = Path(tmp)
        env = ray_env("rb")
        study_file = tiny_study(tmp_path, "resume", training={"optimizer": "sgd", "lr": 0.05, "epochs": epochs,
                                                              "batch_size": 64, "device": "cpu"},
                                asha={"enabled": False},
                                search={"num_samples": trials, "max_concurrent": 2, "n_startup_trials": 1})
        study_dir = tmp_path / "runs" / "resume"
        driver = start_driver(study_file, tmp_path / "runs", env)
        try:
            wait_for(lambda: len(epoch_parts(study_dir)) >= kill_after, 300, f"{kill_after} results", driver)
        finally:
            driver.send_signal(signal.SIGKILL)
            driver.wait()
            kill_processes_under(env["RAY_TMPDIR"])
        started = time.time()
        try:
            run_cli("resume", str(study_dir), env=env)
        finally:
            kill_processes_under(env["RAY_TMPDIR"])
        ended = time.time()
        new = [p.stat().st_mtime for p in epoch_parts(study_dir) if p.stat().st_mtime >= started]
        if not new:
            raise RuntimeError("resume wrote no new epoch result")
        return {"first_result_s": min(new) - started, "total_s": ended - started}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--kill-after", type=int, default=3, help="epoch results before the driver is killed")
    parser.add_argument("--smoke-test", action="store_true", help="one cluster start, one resume of 2 trials")
    args = parser.parse_args(argv)
    if args.smoke_test:
        args.runs, args.trials, args.epochs, args.kill_after = 1, 2, 3, 1
    print(header("bench_cluster: two-node cluster start, resume of a killed study",
                 "none fixed: recorded",
                 "cluster start >= 2 raylet starts; resume >= Ray start + restore + one epoch"))
    starts = stats([cluster_start_s() for _ in range(args.runs)])
    print(f"two-node cluster start: {starts.describe(' s', '{:.1f}')}  (load: {load_average()})")
    resumes = [resume_s(args.trials, args.epochs, args.kill_after) for _ in range(args.runs)]
    first = stats([r["first_result_s"] for r in resumes])
    total = stats([r["total_s"] for r in resumes])
    print(f"resume ({args.trials} trials x {args.epochs} epochs, killed after {args.kill_after} results): first new "
          f"result {first.describe(' s', '{:.1f}')}; whole resume {total.describe(' s', '{:.1f}')}  "
          f"(load: {load_average()})")
    return {"cluster_start": starts.as_dict(), "resume_first_result": first.as_dict(), "resume_total": total.as_dict()}


if __name__ == "__main__":
    main()

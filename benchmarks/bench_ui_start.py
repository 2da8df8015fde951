"""Benchmark 18: how long ``smoothstudy ui`` takes to serve — seconds from starting ``python -m study ui <study>``
to the MLflow server answering ``/health``, with MLflow's job runner off (what ``ui`` does now, see
``study.mlflow_server.server_env``) and on (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true``: MLflow's own default,
what ``ui`` ran before), and how many processes the server runs. Each start is stopped with SIGTERM, as a user's
Ctrl-C does, before the next; the cases alternate, so a change of the machine's load hits both alike.

The study is a fresh folder holding the smoke study file and an empty MLflow store (``ui`` reads the study's name
and its experiment, then serves the store).

Bound: job runner off starts faster than on, with no huey consumer among the server's processes.
Theoretical minimum: importing MLflow's server app in each of the server's request workers (MLflow starts 4), which
on 2 cores run two at a time.

Usage: python -m benchmarks.bench_ui_start [--runs 3] [--cases jobs_off jobs_on] [--smoke-test]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import header, load_average, stats
from benchmarks.harness import ROOT, free_port, processes_below, tiny_study
from study.mlflow_server import JOBS_ENV
from study.ui import wait_until_up

CASES = ("jobs_off", "jobs_on")
START_LIMIT_S = 300.0


def make_study(folder: Path) -> Path:
    from mlflow import MlflowClient

    study = folder / "uistart"
    study.mkdir()
    (study / "study.yaml").write_text(Path(tiny_study(folder, "uistart")).read_text())
    MlflowClient(f"sqlite:///{study / 'mlflow.db'}").search_experiments()  # the store exists: ui makes none
    return study


def start_once(study: Path, case: str) -> tuple[float, int, int]:
    """(seconds to /health, processes below ui, huey consumers among them) of one start, then stops it."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop(JOBS_ENV, None)
    if case == "jobs_on":
        env[JOBS_ENV] = "true"
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "study", "ui", str(study), "--no-browser", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_until_up(f"http://127.0.0.1:{port}/health", proc, START_LIMIT_S):
            raise RuntimeError(f"{case}: no answer on /health (ui exit code {proc.poll()})")
        took = time.perf_counter() - start
        time.sleep(2)  # the job runner starts its consumers after the app answers
        below = processes_below(proc.pid)
        return took, len(below), sum("huey_consumer" in line for line in below)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--smoke-test", action="store_true", help="1 run of jobs_off")
    args = parser.parse_args(argv)
    if args.smoke_test:
        args.runs, args.cases = 1, ["jobs_off"]
    print(header("bench_ui_start: seconds from `smoothstudy ui` to MLflow answering, job runner off vs on",
                 "jobs_off faster than jobs_on, no huey consumer with jobs_off",
                 "MLflow's server app imported by each request worker"))
    times: dict[str, list[float]] = {case: [] for case in args.cases}
    counts: dict[str, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_ui") as tmp:
        study = make_study(Path(tmp))
        for i in range(args.runs):
            for case in args.cases:
                took, processes, huey = start_once(study, case)
                times[case].append(took)
                counts[case] = (processes, huey)
                print(f"run {i + 1} {case:<9} {took:.1f} s to /health  processes {processes} (huey {huey})  "
                      f"(load: {load_average()})", flush=True)
    results = {}
    for case in args.cases:
        s = stats(times[case])
        results[case] = {**s.as_dict(), "processes": counts[case][0], "huey": counts[case][1]}
        print(f"{case:<9} {s.describe(' s')}  processes {counts[case][0]} (huey consumers {counts[case][1]})")
    return results


if __name__ == "__main__":
    main()

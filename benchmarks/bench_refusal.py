"""Benchmark 16: what a refusal costs — the wall time of ``smoothstudy`` refusing a bad study file, a bad flag
and a folder that is no study, and of ``--help``, each in a fresh interpreter (what a user waits for).

Measured per case: seconds from the process's start to its exit (exit code 2 for a refusal, 0 for
``--help``), warm (the files in the page cache: one untimed call first). ``--root`` measures another checkout
(e.g. an older commit, extracted with ``git archive``) with the same interpreter; cases that checkout would
not refuse (it would start a study) are left out with ``--cases``.

Bound: a refusal of a bad study file <= 1 s warm.
Theoretical minimum: the interpreter's start (``python -c pass``) plus reading the YAML and the schema.

Usage: python -m benchmarks.bench_refusal [--runs 10] [--root CHECKOUT] [--cases unknown_key help …] [--smoke-test]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import header, load_average, stats
from benchmarks.harness import ROOT

BAD_FILES = {
    "unknown_key": "name: bad\nmethods: {ce: {}}\nbogus_key: 1\n",
    "bool_epochs": "name: bad\nmethods: {ce: {}}\ntraining: {epochs: true}\n",
    "empty_grid": "name: bad\nmethods: {ls: {alpha: {grid: []}}}\n",
}
CASES = (*BAD_FILES, "bad_optuna_url", "status_no_study", "help", "python")


def command(case: str, tmp: Path) -> list[str]:
    runs = str(tmp / "runs")
    if case in BAD_FILES:
        return ["-m", "study", "run", str(tmp / f"{case}.yaml"), "--storage", runs]
    return {"bad_optuna_url": ["-m", "study", "run", str(tmp / "unknown_key.yaml"), "--storage", runs,
                               "--optuna-storage", "bogus"],
            "status_no_study": ["-m", "study", "status", str(tmp / "nothing")],
            "help": ["-m", "study", "--help"],
            "python": ["-c", "pass"]}[case]


def time_case(case: str, root: Path, tmp: Path, runs: int) -> list[float]:
    return time_process(command(case, tmp), root, 0 if case in ("help", "python") else 2, runs, case)


def time_process(args: list[str], root: Path, expected: int, runs: int, label: str) -> list[float]:
    """Seconds of ``runs`` calls of ``python ARGS`` in checkout ``root``, each in a fresh interpreter, after one
    untimed call (it warms the page cache); each must exit with ``expected``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, *args], cwd=root, env=env, capture_output=True, text=True,
                              timeout=300)
        took = time.perf_counter() - start
        if done.returncode != expected:
            raise RuntimeError(f"{label}: exit {done.returncode}, not {expected}\n{done.stderr[-2000:]}")
        if i:  # the first call warms the page cache
            times.append(took)
    return times


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to measure (default: this one)")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--smoke-test", action="store_true", help="2 runs of each case")
    args = parser.parse_args(argv)
    if args.smoke_test:
        args.runs = 2
    print(header("bench_refusal: the wall time of a refusal, in a fresh interpreter", "bad study file <= 1 s warm",
                 "the interpreter's start plus reading the YAML and the schema"))
    print(f"checkout: {args.root}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_refusal") as tmp:
        tmp_path = Path(tmp)
        for name, text in BAD_FILES.items():
            (tmp_path / f"{name}.yaml").write_text(text)
        for case in args.cases:
            s = stats(time_case(case, args.root, tmp_path, args.runs))
            results[case] = s.as_dict()
            print(f"{case:<16} {s.describe()}  (load: {load_average()})")
        if (tmp_path / "runs").exists():
            raise RuntimeError("a refusal wrote its study folder")
    return results


if __name__ == "__main__":
    main()

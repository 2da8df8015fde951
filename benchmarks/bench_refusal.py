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

import tempfile
from pathlib import Path

from benchmarks.common import header, load_average, stats
from benchmarks.harness import fresh_interpreter_parser, parse_timing_args, time_process

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


def main(argv: list[str] | None = None) -> dict:
    args = parse_timing_args(fresh_interpreter_parser(__doc__, CASES, runs=10, smoke_runs=2), argv)
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

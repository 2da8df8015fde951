"""Benchmark 17: light commands are light — the wall time of ``smoothstudy status`` (text and ``--json``) of a
finished study, ``ui --help``, ``--help`` and ``list``, each in a fresh interpreter, and which heavy modules each
imports (``benchmarks.harness.HEAVY_MODULES``: torch and Ray must not be among them, except for ``list``, which
prints the registries that torch's modules declare).

Measured per case: seconds from the process's start to its exit (exit code 0), warm (one untimed call first),
as ``bench_refusal`` does; the imports in one more, untimed, interpreter. The study (``--study``, a finished
one) is copied to a temporary folder first, so nothing is written into it. ``--root`` measures another checkout
(e.g. an older commit, extracted with ``git archive``) with the same interpreter and the same study.

Bound: none of torch, Ray for ``status``, ``status --json``, ``ui --help``, ``--help``.
Theoretical minimum: the interpreter's start plus reading the study's files (pandas and pyarrow for Parquet,
scipy for the answer's statistics, Optuna for its storage).

Usage: python -m benchmarks.bench_light_commands --study runs/<study> [--runs 3] [--root CHECKOUT] [--cases …]
       [--smoke-test]
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from benchmarks.common import header, load_average, stats
from benchmarks.harness import fresh_interpreter_parser, imported_by, parse_timing_args, time_process

CASES = ("status", "status_json", "ui_help", "help", "list")


def command(case: str, study: Path) -> list[str]:
    return {"status": ["status", str(study)], "status_json": ["status", str(study), "--json"],
            "ui_help": ["ui", "--help"], "help": ["--help"], "list": ["list"]}[case]


def main(argv: list[str] | None = None) -> dict:
    parser = fresh_interpreter_parser(__doc__, CASES, runs=3, smoke_runs=1)
    parser.add_argument("--study", type=Path, required=True, help="a finished study folder (copied, never written)")
    args = parse_timing_args(parser, argv)
    if not (args.study / "study.yaml").is_file():
        parser.error(f"--study {args.study}: not a study folder (no study.yaml)")
    print(header("bench_light_commands: the wall time of status, ui --help, --help and list, in a fresh interpreter",
                 "status, status --json, ui --help, --help import neither torch nor Ray",
                 "the interpreter's start plus reading the study's files"))
    print(f"checkout: {args.root}  study: {args.study}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_light") as tmp:
        study = Path(shutil.copytree(args.study, Path(tmp) / args.study.name))
        for case in args.cases:
            argv_ = command(case, study)
            _, code, modules = imported_by(*argv_, root=args.root)
            if code != "0":
                raise RuntimeError(f"{case}: exit {code}, not 0")
            s = stats(time_process(["-m", "study", *argv_], args.root, 0, args.runs, case))
            results[case] = {**s.as_dict(), "imports": modules}
            print(f"{case:<12} {s.describe(' s')}  imports: {', '.join(modules) or 'none of them'}  "
                  f"(load: {load_average()})")
    return results


if __name__ == "__main__":
    main()

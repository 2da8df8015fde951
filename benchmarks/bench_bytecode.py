"""Benchmark 19: what the installed packages' bytecode saves: the wall time of a fresh interpreter importing the
training stack, of ``smoothstudy report`` of a finished study and of the smoke study (``studies/smoke.yaml``:
Ray's start, 6 trials in Ray workers, the sinks and the report), each with the ``.pyc`` files the install wrote
(``cached``) and with the installed packages' ones neither read nor written (``uncached``): what a uv install
without ``--compile-bytecode`` gives wherever Python may not write its cache (``PYTHONDONTWRITEBYTECODE=1``). The
standard library and the project's own modules keep their caching in both modes. ``uncached`` puts a
``sitecustomize`` first on ``PYTHONPATH`` that tells the import system that site-packages' sources have no cache
(``cache_from_source`` raises ``NotImplementedError``, as it does where caching is off), so they compile from
source; Ray's workers inherit the driver's environment and run uncached too.

Measured per case and mode: seconds from the process's start to its exit (exit code 0), fresh interpreters, one
untimed call first (it warms the page cache), median of ``--runs``; the modes alternate within each run. Also
printed: how many of the installed packages' ``.py`` files have a ``.pyc`` of this interpreter next to them.

Bound: ``cached`` no slower than ``uncached`` in every case.
Theoretical minimum: ``cached`` is the module bodies' execution plus unmarshalling; ``uncached`` adds compiling
every imported module's source, which no install can avoid unless it writes the ``.pyc`` files.

Usage: python -m benchmarks.bench_bytecode [--runs 3] [--cases imports report smoke_study] [--study runs/<study>]
       [--modules torch ray.tune …] [--smoke-test]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from benchmarks.common import header, load_average, stats
from benchmarks.harness import ROOT, fresh_interpreter_parser, parse_timing_args

CASES = ("imports", "report", "smoke_study")
MODES = ("cached", "uncached")
STACK = ("torch", "ray.tune", "mlflow", "optuna", "pandas", "scipy.stats")
NO_CACHE = """import _frozen_importlib_external as _external

_cache_from_source = _external.cache_from_source


def cache_from_source(path, debug_override=None, *, optimization=None):
    if path.startswith({site!r}):
        raise NotImplementedError("bench_bytecode: no cache for the installed packages")
    return _cache_from_source(path, debug_override, optimization=optimization)


_external.cache_from_source = cache_from_source
"""


def pyc_share(site_packages: Path) -> tuple[int, int]:
    """(installed ``.py`` files with a ``.pyc`` of this interpreter, all installed ``.py`` files)."""
    tag = sys.implementation.cache_tag
    sources = list(site_packages.rglob("*.py"))
    cached = sum((p.parent / "__pycache__" / f"{p.stem}.{tag}.pyc").is_file() for p in sources)
    return cached, len(sources)


def environments(site: Path, folder: Path, python_path: str) -> dict[str, dict[str, str]]:
    """Each mode's environment: ``python_path`` on ``PYTHONPATH``, no cache written; ``uncached`` also reads none
    for the sources under ``site`` (its ``sitecustomize`` is written into ``folder``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(NO_CACHE.format(site=str(site) + os.sep))
    base = {**os.environ, "PYTHONPATH": python_path, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return {"cached": base, "uncached": {**base, "PYTHONPATH": f"{folder}{os.pathsep}{python_path}"}}


def command(case: str, study: Path | None, storage: Path, modules: list[str]) -> list[str]:
    if case == "imports":
        return ["-c", f"import {', '.join(modules)}"]
    if case == "report":
        return ["-m", "study", "report", str(study)]
    return ["-m", "study", "run", str(ROOT / "studies" / "smoke.yaml"), "--storage", str(storage), "--force"]


def timed(args: list[str], env: dict[str, str], label: str) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{label}: exit {done.returncode}, not 0\n{done.stderr[-2000:]}")
    return took


def main(argv: list[str] | None = None) -> dict:
    parser = fresh_interpreter_parser(__doc__, CASES, runs=3, smoke_runs=1)
    parser.add_argument("--study", type=Path, help="a finished study folder for 'report' (copied, never written); "
                        "default: the smoke study this benchmark runs first")
    parser.add_argument("--modules", nargs="+", default=list(STACK), help="what 'imports' imports")
    args = parse_timing_args(parser, argv)
    if args.study is not None and not (args.study / "study.yaml").is_file():
        parser.error(f"--study {args.study}: not a study folder (no study.yaml)")
    print(header("bench_bytecode: fresh interpreters with and without the installed packages' .pyc files",
                 "cached no slower than uncached in every case",
                 "cached: module bodies and unmarshalling; uncached adds compiling every imported module"))
    site = Path(sysconfig.get_paths()["purelib"])
    cached, total = pyc_share(site)
    print(f"imports: {' '.join(args.modules)}")
    print(f"site-packages: {site}  .py files with a {sys.implementation.cache_tag} .pyc: {cached} of {total}")
    if "sitecustomize" in sys.modules:
        raise RuntimeError("this interpreter has a sitecustomize of its own, which 'uncached' would hide")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench_bytecode") as tmp:
        tmp_path = Path(tmp)
        storage = tmp_path / "runs"
        envs = environments(site, tmp_path / "no_cache", str(ROOT))
        base = envs["cached"]
        study = None
        if "report" in args.cases:
            source = args.study
            if source is None:
                timed(command("smoke_study", None, storage, args.modules), base, "smoke study for report")
                source = storage / "smoke"
            study = Path(shutil.copytree(source, tmp_path / "copy" / source.name))
        times = {(case, mode): [] for case in args.cases for mode in MODES}
        for run in range(args.runs + 1):
            for case in args.cases:
                for mode in MODES if run % 2 == 0 else MODES[::-1]:
                    took = timed(command(case, study, storage, args.modules), envs[mode], f"{case} {mode}")
                    if run:  # the first call warms the page cache
                        times[(case, mode)].append(took)
        for case in args.cases:
            row = {mode: stats(times[(case, mode)]) for mode in MODES}
            results[case] = {mode: s.as_dict() for mode, s in row.items()}
            ratio = row["cached"].median / row["uncached"].median
            results[case]["ratio"] = ratio
            for mode in MODES:
                print(f"{case:<12} {mode:<9} {row[mode].describe(' s')}")
            print(f"{case:<12} cached / uncached {ratio:.3f}  (load: {load_average()})")
    return results


if __name__ == "__main__":
    main()

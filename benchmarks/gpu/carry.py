"""Build the folder that travels to a bare GPU machine: wheels of what its image lacks, and the data.

The machine (Python 3.12, torch, pandas, pyarrow, scikit-learn, … already there; see ``preinstalled.txt``)
has no network, so Ray, Optuna, MLflow (skinny: client and SQLite store, no UI), pydantic and their missing
dependencies travel as wheels, at most 64 MiB per call with the working tree. Ray's wheel is trimmed of what
a Python-only local cluster never loads (Java workers, the dashboard's web client, RLlib, Serve, LLM).

Two parts, carried by separate calls, since together they are over the limit:
- ``wheels/``: installed by ``run.py --steps install`` into ``site/`` next to them (kept while the machine
  stays warm);
- ``data/fashion-mnist/``: the four IDX files.

``--check`` verifies, offline, that every dependency of every carried wheel (for Python 3.12 on Linux) is
carried or preinstalled.

Usage: python benchmarks/gpu/carry.py [--out .gpu_carry] [--parts wheels data] [--check]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
LIMIT_MB = 64.0
PYTHON = "3.12"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
# What the study code imports beyond the image, and their dependencies that the image lacks.
CARRIED = (
    "ray", "optuna", "mlflow-skinny", "mlflow-tracing", "pydantic", "pydantic-core", "annotated-types",
    "typing-inspection", "alembic", "sqlalchemy", "mako", "colorlog", "jsonschema", "jsonschema-specifications",
    "referencing", "rpds-py", "cachetools", "databricks-sdk", "fastapi", "starlette", "gitpython", "gitdb",
    "smmap", "importlib-metadata", "opentelemetry-api", "opentelemetry-sdk", "opentelemetry-proto",
    "opentelemetry-semantic-conventions", "python-dotenv", "sqlparse", "uvicorn", "mlxtend", "cryptography",
    "cffi", "pycparser",
)
# Declared dependencies that the study's code paths never import (checked on the machine by run.py's
# import step): Databricks' Google credentials, SQLAlchemy's asyncio support, TensorBoard logging.
NOT_CARRIED = {"google-auth", "greenlet", "tensorboardx"}
EXTRAS = {"ray": {"tune"}}
RAY_TRIM = ("ray/jars/", "ray/dashboard/client/", "ray/rllib/", "ray/serve/", "ray/llm/")
DATA_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
              "t10k-labels-idx1-ubyte.gz")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def preinstalled() -> set[str]:
    words = []
    for line in (HERE / "preinstalled.txt").read_text().splitlines():
        if not line.startswith("#"):
            words += line.split()
    return {normalise(w) for w in words}


def pins(constraints: Path) -> dict[str, str]:
    out = {}
    for line in constraints.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            out[normalise(name)] = version.split(";")[0].strip()
    return out


def download(names: tuple[str, ...], dest: Path, constraints: Path) -> None:
    pinned = pins(constraints)
    specs = [f"{n}=={pinned[n]}" if n in pinned else n for n in names]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           PYTHON, "--implementation", "cp", *[a for p in PLATFORMS for a in ("--platform", p)], "-d", str(dest),
           *specs]
    subprocess.run(cmd, check=True)


def strip_elf(data: bytes) -> bytes:
    """``data`` with its symbol tables removed when it is an ELF file and ``strip`` is there (the dynamic
    symbols stay: ``--strip-unneeded``); else ``data`` itself."""
    if not data.startswith(b"\x7fELF") or not shutil.which("strip"):
        return data
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        if subprocess.run(["strip", "--strip-unneeded", f.name], capture_output=True).returncode != 0:
            return data
        return Path(f.name).read_bytes()


def trim_ray(wheel: Path) -> Path:
    """A copy of Ray's wheel without :data:`RAY_TRIM` and with its binaries stripped, its RECORD rewritten
    to match (stripped files are listed without a hash)."""
    out = wheel.with_name(wheel.name + ".tmp")
    stripped, record = set(), None
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for item in src.infolist():
            if item.filename.startswith(RAY_TRIM):
                continue
            if item.filename.endswith(".dist-info/RECORD"):
                record = item
                continue
            data = src.read(item)
            small = strip_elf(data)
            if small is not data:
                stripped.add(item.filename)
            dst.writestr(item, small, compresslevel=9)
        lines = [ln for ln in src.read(record).decode().splitlines() if not ln.startswith(RAY_TRIM)]
        lines = [ln.split(",")[0] + ",," if ln.split(",")[0] in stripped else ln for ln in lines]
        dst.writestr(record, "\n".join(lines) + "\n", compresslevel=9)
    out.replace(wheel)
    return wheel


def wheel_name(path: Path) -> str:
    return normalise(path.name.split("-")[0])


def missing_dependencies(wheels: list[Path], have: set[str]) -> list[str]:
    """``"wheel needs name"`` for each dependency of a carried wheel (Python 3.12, Linux, the extras of
    :data:`EXTRAS`) that is neither carried nor in ``have``."""
    from packaging.requirements import Requirement

    carried = {wheel_name(w) for w in wheels}
    missing = []
    for wheel in wheels:
        name = wheel_name(wheel)
        with zipfile.ZipFile(wheel) as z:
            meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
            lines = z.read(meta).decode(errors="replace").splitlines()
        for line in lines:
            if not line.startswith("Requires-Dist:"):
                continue
            req = Requirement(line.split(":", 1)[1].strip())
            extras = EXTRAS.get(name, set()) | {""}
            env = {"python_version": PYTHON, "python_full_version": PYTHON + ".3", "sys_platform": "linux",
                   "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
                   "os_name": "posix"}
            if req.marker and not any(req.marker.evaluate({**env, "extra": e}) for e in extras):
                continue
            dep = normalise(req.name)
            if dep not in carried and dep not in have and dep not in NOT_CARRIED:
                missing.append(f"{name} needs {dep}")
    return sorted(set(missing))


def size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def build_wheels(out: Path, constraints: Path) -> Path:
    dest = out / "wheels"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        download(CARRIED, Path(tmp), constraints)
        for wheel in Path(tmp).glob("*.whl"):
            shutil.move(str(wheel), dest / wheel.name)
    for wheel in dest.glob("ray-*.whl"):
        trim_ray(wheel)
    return dest


def build_data(out: Path, source: Path) -> Path:
    dest = out / "data" / "fashion-mnist"
    dest.mkdir(parents=True, exist_ok=True)
    for name in DATA_FILES:
        src = source / name
        if not src.exists():
            raise SystemExit(f"{src}: missing; allowed: a directory with the four Fashion-MNIST IDX files "
                             "(--fashion-mnist-dir)")
        shutil.copy2(src, dest / name)
    return dest


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".gpu_carry")
    parser.add_argument("--parts", nargs="+", choices=("wheels", "data"), default=["wheels", "data"])
    parser.add_argument("--constraints", type=Path, default=ROOT / "constraints.txt")
    parser.add_argument("--fashion-mnist-dir", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--check", action="store_true", help="only check the closure of the existing wheels")
    args = parser.parse_args(argv)
    out: dict = {}
    if "wheels" in args.parts and not args.check:
        build_wheels(args.out, args.constraints)
    if "data" in args.parts and not args.check:
        build_data(args.out, args.fashion_mnist_dir)
    wheels = sorted((args.out / "wheels").glob("*.whl"))
    if wheels:
        missing = missing_dependencies(wheels, preinstalled())
        out["missing"] = missing
        print(f"wheels: {len(wheels)}, {size_mb(args.out / 'wheels'):.1f} MiB; dependencies neither carried nor "
              f"preinstalled: {', '.join(missing) or 'none'}")
    tree = sum((ROOT / f).stat().st_size for f in subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
        if (ROOT / f).is_file()) / 2**20
    for part in ("wheels", "data"):
        if (args.out / part).exists():
            mb = size_mb(args.out / part)
            out[part] = mb
            verdict = "fits" if mb + tree <= LIMIT_MB else "OVER"
            print(f"{part}: {mb:.1f} MiB + working tree {tree:.1f} MiB = {mb + tree:.1f} MiB of {LIMIT_MB:.0f}: "
                  f"{verdict}")
    return out


if __name__ == "__main__":
    main()

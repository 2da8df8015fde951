"""The measurements of a GPU session, one process each: ``python -m benchmarks.gpu.steps NAME --json PATH
[--smoke-test] [--out DIR]`` runs step NAME and writes what it returns as JSON. ``run.py`` calls them in order,
each under a time limit; ``--smoke-test`` gives the CPU-sized version of the same code path.

- ``imports``: the carried libraries import; their versions and the GPU's.
- ``tests``: the test suite's CUDA code paths (AMP, channels_last, compile, seed groups, fractional GPUs).
- ``trainable_mlp`` / ``trainable_resnet18``: a trial through Ray Tune vs a bare GPU-resident loop.
- ``flops``: ResNet-18's images/s and fraction of the bf16 peak.
- ``packing``: 1, 2, 4, 8 trials per GPU.
- ``quick_study``: studies/quick.yaml end to end on the GPU, with its overhead.
- ``lr_grid``: the ``lr_table1_fmnist`` grid (29 configurations) with trials packed; its study data (tables,
  no checkpoints) archived in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ("torch", "torchvision", "timm", "ray", "optuna", "mlflow-skinny", "mlflow", "pydantic", "numpy",
            "pandas", "pyarrow", "scikit-learn", "scipy", "sqlalchemy", "mlxtend")
ARCHIVE_PART_MB = 15  # files coming back from the machine are capped at 16 MiB each
QUICK_GPU_SHARE = 0.25
LR_GRID_CONCURRENCY = 12
ARCHIVE_MARGIN_S = 30


def imports(smoke: bool, out: Path, limit: float) -> dict:
    from importlib import metadata

    import mlflow  # noqa: F401
    import optuna  # noqa: F401
    import pydantic  # noqa: F401
    import torch
    from mlflow.tracking import MlflowClient  # noqa: F401
    from ray import tune  # noqa: F401

    from trainables.data import mnist5k

    versions = {}
    for name in VERSIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    gpu = {}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        gpu = {"name": props.name, "capability": f"{props.major}.{props.minor}",
               "memory_gib": props.total_memory / 2**30, "cuda": torch.version.cuda,
               "cudnn": torch.backends.cudnn.version(), "driver": _driver()}
    return {"python": sys.version.split()[0], "versions": versions, "gpu": gpu, "unmet": unmet_requirements(),
            "mnist5k_file": mnist5k.data_file().exists()}


def _driver() -> str | None:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def unmet_requirements() -> list[str]:
    """The project's declared dependencies that the installed versions do not satisfy."""
    from importlib import metadata

    import tomllib
    from packaging.requirements import Requirement

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    unmet = []
    for spec in deps:
        req = Requirement(spec)
        try:
            have = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            unmet.append(f"{spec} (missing)")
            continue
        if not req.specifier.contains(have, prereleases=True):
            unmet.append(f"{spec} (have {have})")
    return unmet


def tests(smoke: bool, out: Path, limit: float) -> dict:
    report = out / "gpu_tests.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", f"--junitxml={report}",
           "tests/trainables/test_gpu_paths.py", "tests/study/test_gpu_study.py"]
    rc = subprocess.run(cmd, cwd=ROOT).returncode
    counts = {"exit_code": rc}
    if report.exists():
        import xml.etree.ElementTree as ET

        suite = ET.parse(report).getroot()
        suite = suite if suite.tag == "testsuite" else suite[0]
        counts.update({k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")})
    if rc not in (0, 5):
        raise RuntimeError(f"GPU tests failed: {counts}")
    return counts


def trainable_mlp(smoke: bool, out: Path, limit: float) -> dict:
    from benchmarks import bench_trainable

    return bench_trainable.main(["--smoke-test"] if smoke else
                                ["--model", "mlp", "--runs", "1", "--epochs", "4", "--batch-size", "512"])


def trainable_resnet18(smoke: bool, out: Path, limit: float) -> dict:
    from benchmarks import bench_trainable

    return bench_trainable.main(["--smoke-test", "--model", "small_cnn"] if smoke else
                                ["--model", "timm/resnet18", "--runs", "1", "--epochs", "3", "--batch-size", "512",
                                 "--subset", "30000"])


def flops(smoke: bool, out: Path, limit: float) -> dict:
    from benchmarks import bench_resnet_flops

    return bench_resnet_flops.main(["--smoke-test"] if smoke else [])


def packing(smoke: bool, out: Path, limit: float) -> dict:
    from benchmarks import bench_gpu_packing

    return bench_gpu_packing.main(["--smoke-test"] if smoke else
                                  ["--models", "mlp", "timm/resnet18", "--trials", "1", "2", "4", "8", "--epochs", "1",
                                   "--subset", "20000"])


def gpu_study_file(source: Path, dest: Path, gpu_share: float, concurrency: int | None = None, cpu: float = 1,
                   fp32: bool = False) -> Path:
    """``source`` with each trial on a share of the GPU (``device: cuda``) and ``cpu`` CPUs, the given
    concurrency, and with ``fp32`` no autocast (``amp: false``)."""
    spec = yaml.safe_load(source.read_text())
    spec["training"] = {**spec.get("training", {}), "device": "cuda", **({"amp": False} if fp32 else {})}
    spec["resources"] = {**spec.get("resources", {}), "cpu": cpu, "gpu": gpu_share}
    if concurrency:
        spec["search"] = {**spec["search"], "max_concurrent": concurrency}
    dest.write_text(yaml.safe_dump(spec, sort_keys=False))
    return dest


def quick_study(smoke: bool, out: Path, limit: float) -> dict:
    from benchmarks import bench_study_overhead

    if smoke:
        return bench_study_overhead.main(["--smoke-test"])
    with tempfile.TemporaryDirectory() as tmp:
        study = gpu_study_file(ROOT / "studies" / "quick.yaml", Path(tmp) / "quick.yaml", QUICK_GPU_SHARE,
                               round(1 / QUICK_GPU_SHARE))
        result = bench_study_overhead.main(["--study", str(study)])
    result["gpu_share"] = QUICK_GPU_SHARE
    return result


def lr_grid(smoke: bool, out: Path, limit: float) -> dict:
    """The grid of the Label Relaxation paper's Fashion-MNIST protocol; on CPU (smoke) its --smoke-test version."""
    storage = Path(tempfile.mkdtemp(prefix="lr_grid_"))
    source = ROOT / "studies" / "lr_table1_fmnist_augmented.yaml"
    if smoke:
        study_file, extra = source, ["--smoke-test"]
    else:
        study_file = gpu_study_file(source, storage / "lr_table1_fmnist_augmented.yaml", 1 / LR_GRID_CONCURRENCY,
                                    LR_GRID_CONCURRENCY)
        extra = []
    start = time.perf_counter()
    # stopped in time to archive what it finished: the step's own limit would kill this process too
    proc = subprocess.Popen([sys.executable, "-m", "study", "run", str(study_file), "--storage", str(storage), *extra],
                            cwd=ROOT, start_new_session=True)
    try:
        rc = proc.wait(timeout=max(1.0, limit - ARCHIVE_MARGIN_S))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        rc = proc.wait()
    wall = time.perf_counter() - start
    root = storage / "lr_table1_fmnist_augmented"
    parts = archive(root, out / "lr_grid.tar.gz") if root.exists() else []
    if rc != 0:
        raise RuntimeError(f"study run exited {rc} after {wall:.0f} s; archived {parts}")
    return {"wall_s": wall, "concurrency": None if smoke else LR_GRID_CONCURRENCY, "archive": parts}


STUDY_FILES = ("study.yaml", "study.json", "optuna.db", "mlflow.db", "mlflow_runs.json", "parquet")


def archive(root: Path, dest: Path, keep: tuple[str, ...] = STUDY_FILES) -> list[str]:
    """The study's files ``keep`` (by default its own, not Ray's checkpoints or MLflow's artifacts) as a .tar.gz,
    split into parts of at most :data:`ARCHIVE_PART_MB` MiB; returns the parts' names."""
    with tempfile.NamedTemporaryFile(suffix=".tar.gz", delete=False) as tmp:
        with tarfile.open(tmp.name, "w:gz") as tar:
            for name in keep:
                if (root / name).exists():
                    tar.add(root / name, arcname=f"{root.name}/{name}")
        data = Path(tmp.name).read_bytes()
    Path(tmp.name).unlink()
    size = ARCHIVE_PART_MB * 2**20
    chunks = [data[i:i + size] for i in range(0, len(data), size)] or [b""]
    if len(chunks) == 1:
        dest.write_bytes(data)
        return [dest.name]
    names = []
    for i, chunk in enumerate(chunks):
        part = dest.with_name(f"{dest.name}.part{i}")
        part.write_bytes(chunk)
        names.append(part.name)
    return names


STEPS = {f.__name__: f for f in (imports, tests, trainable_mlp, trainable_resnet18, flops, packing, quick_study,
                                 lr_grid)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="one measurement step of benchmarks/gpu/run.py")
    parser.add_argument("step", choices=list(STEPS))
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--limit", type=float, default=math.inf, help="seconds this step has")
    parser.add_argument("--smoke-test", action="store_true")
    args = parser.parse_args(argv)
    result = STEPS[args.step](args.smoke_test, args.out, args.limit)
    args.json.write_text(json.dumps(result, default=str))


if __name__ == "__main__":
    main()

"""Shared by the speed benchmarks: the machine/versions header, timing with warm-up, median and spread, GPU
peak figures and a GPU utilisation sampler (pynvml, else nvidia-smi, else none)."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from analysis.facts import cpu_model

ROOT = Path(__file__).resolve().parents[1]

# Dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets, TFLOP/s; matched by substring
# of torch.cuda.get_device_name(). ``--peak-tflops`` overrides.
BF16_PEAK_TFLOPS = (
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),  # SXM
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10G", 70.0),
    ("A10", 125.0),
    ("RTX 4090", 165.0),
    ("RTX 3090", 71.0),
)



def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def gpu_name() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def bf16_peak_tflops(name: str | None) -> float | None:
    if not name:
        return None
    for key, tflops in BF16_PEAK_TFLOPS:
        if key in name:
            return tflops
    return None


def header(title: str, bound: str, minimum: str) -> str:
    """The lines every benchmark prints first: what it measures, its bound, the theoretical minimum, the
    machine, the versions and the load average at start."""
    import torch

    gpu = gpu_name()
    lines = [
        f"== {title}",
        f"bound: {bound}",
        f"theoretical minimum: {minimum}",
        f"cpu: {cpu_model()}  cores available: {len(os.sched_getaffinity(0))}  "
        f"gpu: {gpu or 'none'}" + (f" (bf16 peak {bf16_peak_tflops(gpu) or '?'} TFLOP/s)" if gpu else ""),
        f"python {platform.python_version()}  torch {torch.__version__}  ray {_version('ray')}  "
        f"mlflow {_version('mlflow')}  pyarrow {_version('pyarrow')}  timm {_version('timm')}",
        f"load average at start: {load_average()}",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class Stats:
    """Median and spread of repeated measurements (``spread`` = (max - min) / median)."""

    values: tuple[float, ...]

    @property
    def runs(self) -> int:
        return len(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def spread(self) -> float:
        med = self.median
        return (max(self.values) - min(self.values)) / med if med else float("nan")

    def describe(self, unit: str = "", fmt: str = "{:.4g}") -> str:
        f = fmt.format
        return (f"median {f(self.median)}{unit}  min {f(min(self.values))}  max {f(max(self.values))}  "
                f"spread {self.spread:.1%}  runs {self.runs}")

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": min(self.values), "max": max(self.values), "spread": self.spread,
                "runs": self.runs}


def stats(values: Sequence[float]) -> Stats:
    if not values:
        raise ValueError("values is empty; allowed: at least one measurement")
    return Stats(tuple(float(v) for v in values))


class Clock:
    """Wall and process CPU time from its creation. On a shared machine the wall time is what a user waits and
    the CPU time the work done: with one torch thread, rates per CPU second hardly move with the load average."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def rates(self, items: float) -> tuple[float, float]:
        """(items per wall second, items per CPU second) since the clock started."""
        return items / (time.perf_counter() - self.wall), items / (time.process_time() - self.cpu)


def time_runs(fn: Callable[[], object], runs: int, warmup: int = 1, sync: Callable[[], None] | None = None) -> Stats:
    """Seconds per call of ``fn`` over ``runs`` calls after ``warmup`` untimed ones; ``sync`` (e.g.
    ``torch.cuda.synchronize``) is called before each clock read so asynchronous GPU work is counted."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        if sync:
            sync()
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return stats(times)


class GpuSampler:
    """Samples GPU utilisation (%) and memory used (MiB) of GPU 0 every ``interval`` s in a thread, through
    pynvml when installed, else ``nvidia-smi``; ``available`` is False when neither works (CPU machines)."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.util: list[float] = []
        self.mem_mb: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._read = self._nvml_reader() or self._smi_reader()
        self.available = self._read is not None

    @staticmethod
    def _nvml_reader():
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:
            return None

        def read() -> tuple[float, float]:
            util = pynvml.nvmlDeviceGetUtilizationRates(handle).gpu
            return float(util), pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20

        return read

    @staticmethod
    def _smi_reader():
        if shutil.which("nvidia-smi") is None:
            return None

        def read() -> tuple[float, float]:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                capture_output=True, text=True, timeout=5, check=True,
            ).stdout.strip().split(",")
            return float(out[0]), float(out[1])

        try:
            read()
        except Exception:
            return None
        return read

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                util, mem = self._read()
                self.util.append(util)
                self.mem_mb.append(mem)
            except Exception:
                pass
            self._stop.wait(self.interval)

    def __enter__(self) -> GpuSampler:
        if self.available:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def summary(self) -> str:
        if not self.available:
            return "gpu utilisation: not measured (no pynvml or nvidia-smi)"
        if not self.util:
            return "gpu utilisation: no samples"
        return (f"gpu utilisation: mean {statistics.mean(self.util):.0f}%  median {statistics.median(self.util):.0f}%"
                f"  ({len(self.util)} samples)  memory used max {max(self.mem_mb):.0f} MiB")

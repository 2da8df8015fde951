"""Driving the CLI as a user does, for the benchmarks and the tests alike: ``smoothstudy`` in a subprocess, a
small study file, a driver to kill, a Ray temp dir of our own and a two-node local cluster."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))
WORKER_IP = "127.0.0.2"  # a second loopback address: the worker node gets an IP of its own


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600, env: dict | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
    """``python -m study ARGS`` in a subprocess (a real driver: Ray and MLflow state stay out of the caller)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "study", *args], cwd=cwd or ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"smoothstudy {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}")
    return proc


# What a light command must not import: the training stack (torch and what builds on it; the registries of
# datasets, models and losses import it) and Ray. The rest of the list is reported, not forbidden: ``status``
# reads Parquet (pandas, pyarrow), ranks (scipy) and shows the Optuna storage (optuna); ``ui`` asks MLflow.
TRAINING_STACK = ("torch", "torchvision", "timm", "ray", "trainables.data", "trainables.models", "trainables.losses")
HEAVY_MODULES = (*TRAINING_STACK, "optuna", "mlflow", "scipy", "pandas", "pyarrow")
IMPORTED = "imported: "  # the line imported_by's interpreter ends with


def imported_by(*args: str, root: Path = ROOT, prelude: str = "", timeout: float = 300
                ) -> tuple[subprocess.CompletedProcess, str, list[str]]:
    """``smoothstudy ARGS`` (``study.cli.main``) in a fresh interpreter in checkout ``root``, after ``prelude``
    (Python run first, e.g. a patch); returns the process, the command's exit code (``raised`` for an exception)
    and which of ``HEAVY_MODULES`` it imported. An exception or ``SystemExit`` (``--help``) ends the command,
    not the count."""
    script = "\n".join([
        "import sys, traceback", prelude, "from study.cli import main",
        "try:", f"    code = main({list(map(str, args))!r})",
        "except SystemExit as stop:", "    code = stop.code",
        "except BaseException:", "    traceback.print_exc(); code = 'raised'",
        f"print({IMPORTED!r} + ' '.join(m for m in {HEAVY_MODULES!r} if m in sys.modules), 'exit', code)",
    ])
    proc = subprocess.run([sys.executable, "-c", script], cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                          capture_output=True, text=True, timeout=timeout)
    last = [line for line in proc.stdout.splitlines() if line.startswith(IMPORTED)]
    if proc.returncode != 0 or not last:
        raise AssertionError(f"smoothstudy {' '.join(map(str, args))}: exit {proc.returncode}\n"
                             f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    modules, code = last[-1].removeprefix(IMPORTED).rsplit(" exit ", 1)
    return proc, code, modules.split()


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


def fresh_interpreter_parser(doc: str, cases: tuple[str, ...], runs: int, smoke_runs: int) -> argparse.ArgumentParser:
    """The options of a benchmark that times CLI commands in fresh interpreters: ``--runs``, ``--root`` (another
    checkout, e.g. an older commit extracted with ``git archive``), ``--cases`` and ``--smoke-test`` (which sets
    ``runs`` to ``smoke_runs`` after parsing, see ``parse_timing_args``)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--runs", type=int, default=runs)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to measure (default: this one)")
    parser.add_argument("--cases", nargs="+", choices=cases, default=list(cases))
    parser.add_argument("--smoke-test", action="store_true", help=f"{smoke_runs} run(s) of each case")
    parser.set_defaults(smoke_runs=smoke_runs)
    return parser


def parse_timing_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.smoke_test:
        args.runs = args.smoke_runs
    return args


def tiny_study(tmp_path, name: str, **overrides) -> str:
    """studies/smoke.yaml cut down: no probe, 600 digits; ``overrides`` replace whole sections."""
    spec = yaml.safe_load((ROOT / "studies" / "smoke.yaml").read_text())
    spec.update(name=name, evaluation={"representation": False, "probe": False})
    spec["data"] = {**spec["data"], "subset": 600}
    spec.update(overrides)
    path = Path(tmp_path) / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def ray_env(prefix: str = "rt") -> dict[str, str]:
    """A Ray temp dir of our own (short: Ray's socket paths must fit 107 bytes), so leftovers are findable."""
    return {"RAY_TMPDIR": tempfile.mkdtemp(prefix=prefix, dir="/tmp"), "PYTHONUNBUFFERED": "1"}


def kill_processes_under(marker: str) -> None:
    """SIGKILL the processes whose command line names ``marker`` (our own Ray temp dir), by pid."""
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        try:
            if marker in (pid_dir / "cmdline").read_bytes().decode(errors="replace"):
                os.kill(int(pid_dir.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


def processes_below(pid: int) -> list[str]:
    """The command lines of every process below ``pid``."""
    parent_of, cmdline = {}, {}
    for pid_dir in Path("/proc").iterdir():
        if pid_dir.name.isdigit():
            try:
                parent_of[int(pid_dir.name)] = int((pid_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmdline[int(pid_dir.name)] = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, ValueError, IndexError):
                continue
    below, frontier = [], {pid}
    while frontier:
        children = {p for p, parent in parent_of.items() if parent in frontier}
        below += [cmdline[p] for p in children]
        frontier = children
    return below


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def epoch_parts(study_dir: Path) -> list[Path]:
    return sorted((study_dir / "parquet" / "epochs").glob("part-*.parquet"))


def start_driver(study_file: str, storage: Path, env: dict[str, str], *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "study", "run", study_file, "--storage", str(storage), *extra],
                            cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"driver exited ({proc.returncode}) before {what}:\n{proc.stdout.read()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def node_ports() -> list[str]:
    """Ports of our own for the Ray agents that default to fixed ports, so clusters of other people on this machine never clash."""
    return ["--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
            "--runtime-env-agent-port", str(free_port()), "--metrics-export-port", str(free_port())]


class TwoNodeCluster:
    def __init__(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="rc", dir="/tmp")
        self.token = Path(self.tmp) / "token"
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        from ray._private.authentication.authentication_token_generator import (
            generate_new_authentication_token,
        )

        self.token.write_text(generate_new_authentication_token())
        # Every process of the cluster and every driver reads the token from this file (RAY_AUTH_TOKEN_PATH);
        # `ray start --address` joins with it only when told RAY_AUTH_MODE=token.
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.token),
                    "RAY_TMPDIR": self.tmp}
        self.start_s = 0.0

    def start(self) -> TwoNodeCluster:
        start = time.perf_counter()
        common = ["--num-cpus=1", "--disable-usage-stats", *node_ports()]
        self._ray("start", "--head", f"--port={self.port}", f"--temp-dir={self.tmp}", "--include-dashboard=false",
                  f"--dashboard-port={free_port()}", *common)
        self._ray("start", f"--address={self.address}", f"--node-ip-address={WORKER_IP}", *common)
        self.start_s = time.perf_counter() - start
        return self

    def _ray(self, *args: str) -> None:
        proc = subprocess.run([RAY, *args], env=self.env, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            self.stop()
            raise AssertionError(f"ray {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")

    def stop(self) -> None:
        kill_processes_under(self.tmp)

"""The GPU session in one script: install the carried wheels, check versions, run the measurements of
``steps.py`` in order, each in its own process under a time limit, within an overall budget; write one JSON
(``gpu_results.json``, rewritten after every step so a cut-off run keeps what it measured) and one log
(``gpu_run.log``) to ``--out``.

On the bare GPU machine (the folder from ``carry.py`` named in the call's carry):

    python3 benchmarks/gpu/run.py --out $OUT --steps install imports tests
    python3 benchmarks/gpu/run.py --out $OUT --budget 540      # the measurements, data carried

Here, on CPU, the same code paths in seconds: ``python benchmarks/gpu/run.py --smoke-test --out DIR`` (a test).
A step whose library is missing (no carried Ray, say) fails alone; the next steps still run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STEPS = ("install", "imports", "tests", "trainable_mlp", "trainable_resnet18", "flops", "packing",
                 "quick_study", "lr_grid")
# seconds each step may take on the GPU (the overall budget may cut it shorter); lr_grid, last, takes what is left
LIMITS = {"install": 120, "imports": 60, "tests": 240, "trainable_mlp": 75, "trainable_resnet18": 90, "flops": 60,
          "packing": 150, "quick_study": 100, "lr_grid": 600}
LOG_CAP_MB = 15


def machine_env(carry: Path) -> dict[str, str]:
    """The environment of every process on the GPU machine: the project and the carried packages
    (``carry/site``) importable, the carried Fashion-MNIST found, unbuffered output."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", RAY_DEDUP_LOGS="0", PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), str(carry / "site"), os.environ.get("PYTHONPATH", ""))
                                        if p)
    data = carry / "data" / "fashion-mnist"
    if data.is_dir():
        env["SMOOTHSTUDY_FASHION_MNIST_DIR"] = str(data)
    env.setdefault("SMOOTHSTUDY_CACHE_DIR", tempfile.mkdtemp(prefix="smoothstudy_cache_"))
    return env


class Session:
    def __init__(self, out: Path, carry: Path, budget: float, smoke: bool, stop_ray_after_timeout: bool = False) -> None:
        self.out, self.carry, self.smoke = out, carry, smoke
        self.stop_ray_after_timeout = stop_ray_after_timeout
        self.deadline = time.monotonic() + budget
        self.site = carry / "site"
        self.log = out / "gpu_run.log"
        self.results_file = out / "gpu_results.json"
        self.results: dict = json.loads(self.results_file.read_text()) if self.results_file.exists() else {}
        self.results.setdefault("steps", {})
        self.env = machine_env(carry)

    def say(self, line: str) -> None:
        print(line, flush=True)
        with self.log.open("a") as f:
            f.write(line + "\n")

    def save(self) -> None:
        self.results_file.write_text(json.dumps(self.results, indent=1, default=str))

    def run(self, name: str, cmd: list[str], limit: float) -> tuple[str, float]:
        """Run ``cmd`` with its output appended to the log; kill its process group at ``limit`` seconds."""
        start = time.monotonic()
        with self.log.open("a") as log:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                rc = proc.wait(timeout=max(1.0, limit))
                status = "ok" if rc == 0 else f"failed (exit {rc})"
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                status = f"timeout after {limit:.0f} s"
                if self.stop_ray_after_timeout:
                    self.stop_ray()
        return status, time.monotonic() - start

    def stop_ray(self) -> None:
        """A killed step can leave Ray's daemons behind, holding the GPU share of the next step. Only with
        ``--stop-ray-after-timeout`` (the GPU machine, which runs nothing else): ``ray stop`` ends every Ray on
        the machine, and a driver whose Ray ends exits with it."""
        subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "stop", "--force"], env=self.env, cwd=ROOT,
                       capture_output=True, timeout=60)

    def install(self) -> dict:
        wheels = sorted((self.carry / "wheels").glob("*.whl"))
        if not wheels:
            return {"installed": 0, "note": f"no wheels under {self.carry / 'wheels'}"}
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
               "--no-cache-dir", "--upgrade", "--target", str(self.site), *map(str, wheels)]
        status, seconds = self.run("install", cmd, LIMITS["install"])
        if status != "ok":
            raise RuntimeError(f"pip install {status}")
        return {"installed": len(wheels), "site": str(self.site)}

    def step(self, name: str, last: bool) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining < 5:
            self.results["steps"][name] = {"status": "skipped: budget spent"}
            self.say(f"== {name}: skipped, budget spent")
            return
        limit = remaining if last or self.smoke else min(LIMITS[name], remaining)
        self.say(f"== {name} (limit {limit:.0f} s)")
        start = time.monotonic()
        entry: dict = {}
        try:
            if name == "install":
                entry["result"] = self.install()
                entry["status"] = "ok"
            else:
                with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
                    result_path = Path(tmp.name)
                cmd = [sys.executable, "-m", "benchmarks.gpu.steps", name, "--json", str(result_path),
                       "--out", str(self.out), "--limit", str(limit)] + (["--smoke-test"] if self.smoke else [])
                entry["status"], _ = self.run(name, cmd, limit)
                if result_path.stat().st_size:
                    entry["result"] = json.loads(result_path.read_text())
                result_path.unlink()
        except Exception as err:  # one broken step must not cost the others
            entry["status"] = f"error: {type(err).__name__}: {err}"
        entry["seconds"] = round(time.monotonic() - start, 1)
        self.results["steps"][name] = entry
        self.save()
        self.say(f"== {name}: {entry['status']} in {entry['seconds']} s")

    def cap_log(self) -> None:
        cap = LOG_CAP_MB * 2**20
        if self.log.exists() and self.log.stat().st_size > cap:
            data = self.log.read_bytes()
            half = cap // 2
            self.log.write_bytes(data[:half] + b"\n[... log cut to its head and tail ...]\n" + data[-half:])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_out")))
    parser.add_argument("--carry", type=Path, default=ROOT / ".gpu_carry")
    parser.add_argument("--steps", nargs="+", choices=DEFAULT_STEPS, default=list(DEFAULT_STEPS))
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for all steps together (default 480; 1800 with --smoke-test)")
    parser.add_argument("--smoke-test", action="store_true", help="CPU-sized versions of every step")
    parser.add_argument("--stop-ray-after-timeout", action="store_true",
                        help="'ray stop --force' after a step that timed out (ends EVERY Ray on the machine)")
    args = parser.parse_args(argv)
    args.budget = args.budget or (1800.0 if args.smoke_test else 480.0)
    args.out.mkdir(parents=True, exist_ok=True)
    session = Session(args.out, args.carry, args.budget, args.smoke_test, args.stop_ray_after_timeout)
    session.say(f"gpu run: steps {' '.join(args.steps)}; budget {args.budget:.0f} s; smoke={args.smoke_test}; "
                f"python {sys.version.split()[0]}; out {args.out}")
    for i, name in enumerate(args.steps):
        session.step(name, last=i == len(args.steps) - 1 and name == "lr_grid")
    session.cap_log()
    summary = {name: entry["status"] for name, entry in session.results["steps"].items()}
    session.say("summary: " + json.dumps(summary))
    return session.results


if __name__ == "__main__":
    main()

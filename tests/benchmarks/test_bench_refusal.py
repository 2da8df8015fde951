import subprocess
import sys

from benchmarks.harness import ROOT


def test_bench_refusal_smoke():
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_refusal", "--smoke-test", "--cases", "unknown_key",
                           "help"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    for needed in ("cpu:", "python", "unknown_key", "help", "median", "runs 2"):
        assert needed in done.stdout, done.stdout

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_metrics.py"


@pytest.mark.slow  # 14 s of the default suite on a 2-core EPYC
def test_bench_metrics_smoke():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke-test"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for needed in ("cpu:", "torch", "python", "runs = 2", "median", "final_metrics", "result:", "bound"):
        assert needed in out

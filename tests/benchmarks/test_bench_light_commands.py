import subprocess
import sys

import pytest

from benchmarks.harness import ROOT


@pytest.mark.slow  # 33 s of the default suite on a 2-core EPYC; test_light_commands checks the imports
def test_bench_light_commands_smoke(smoke_study):
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_light_commands", "--smoke-test", "--study",
                           str(smoke_study), "--cases", "status", "ui_help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    for needed in ("cpu:", "status ", "ui_help", "median", "runs 1", "imports: "):
        assert needed in done.stdout, done.stdout
    assert "torch" not in done.stdout.split("ui_help")[1], done.stdout

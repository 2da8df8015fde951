import math

import pytest

from benchmarks.bench_trainable import main


@pytest.mark.slow  # real Ray workers: 69 s of the default suite on a 2-core EPYC
def test_smoke_mode_runs_a_trial_through_tune_and_the_bare_loop(capsys):
    result = main(["--smoke-test"])
    [run] = result["runs"]
    assert run["epochs_reported"] == 3
    assert run["bare"] > 0 and run["per_epoch"] > 0 and run["train_only"] >= run["per_epoch"] * 0.99
    assert run["ratio"] == pytest.approx(run["per_epoch"] / run["bare"])
    assert math.isfinite(run["peak_mem_mb"]) and run["peak_mem_mb"] > 0  # sys/peak_mem_mb of the final result
    out = capsys.readouterr().out
    assert "cpu:" in out and "result: median ratio" in out

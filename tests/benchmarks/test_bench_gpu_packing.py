import pytest

from benchmarks.bench_gpu_packing import main


@pytest.mark.slow  # real Ray workers: 60 s of the default suite on a 2-core EPYC
def test_smoke_mode_packs_one_and_two_trials_on_cpu(capsys):
    result = main(["--smoke-test"])
    rows = result["small_cnn"]
    assert [r["k"] for r in rows] == [1, 2]
    assert all(r["aggregate"] > 0 and r["per_trial"] > 0 and r["peak_mb"] > 0 for r in rows)
    assert rows[0]["speedup"] == 1.0
    assert rows[1]["speedup"] == pytest.approx(rows[1]["aggregate"] / rows[0]["aggregate"])
    out = capsys.readouterr().out
    assert "result small_cnn: best k=" in out

import pytest

from benchmarks.bench_final_eval import BOUND, main


def test_smoke_mode_prints_the_evaluation_share_of_a_trial_and_its_bound(capsys):
    result = main(["--smoke-test"])
    [run] = result["runs"]
    assert result["bound"] == BOUND
    parts = ("setup_s", "epochs_s", "final_eval_s", "artifacts_s")
    assert all(run[k] > 0 for k in parts)
    assert run["trial_s"] == pytest.approx(sum(run[k] for k in parts))
    assert run["ratio"] == pytest.approx((run["final_eval_s"] + run["artifacts_s"]) / run["trial_s"])
    timed = [v for k, v in run.items() if k.startswith("part/")]
    assert len(timed) == 4 and sum(timed) <= run["final_eval_s"]  # forward, corruption, transfer load, metrics
    out = capsys.readouterr().out
    assert "cpu:" in out and "transfer=mnist5k" in out and "shift=3" in out
    verdict = "within" if result["ratio"]["median"] <= BOUND else "OVER"
    assert f"bound {BOUND:.2f}: {verdict} the bound" in out

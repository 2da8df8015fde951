import math

import pytest

from analysis.results import read_epochs, read_trials
from benchmarks.bench_reporting import EPOCH_KEYS, drive_sinks, main, make_sinks


def test_smoke_mode_measures_every_layer_and_derives_the_interval(capsys):
    result = main(["--smoke-test"])
    for kind in ("parquet", "callback"):
        assert result[kind]["results_per_s"]["median"] > 0
    c = result["driver_s_per_result"]
    assert c == pytest.approx(1 / result["callback"]["results_per_s"]["median"])
    assert result["min_interval_s"] == pytest.approx(2 * c / 0.02)  # 2 trials, 2% overhead, no Tune run
    assert result["report_every_epochs"] == max(1, math.ceil(result["min_interval_s"] / 5.0))
    out = capsys.readouterr().out
    assert "cpu:" in out and "torch" in out and "result:" in out


def test_driven_sinks_store_every_result(tmp_path):
    per_result, per_trial = drive_sinks(make_sinks("parquet", tmp_path), trials=3, epochs=4)
    assert per_result > 0 and per_trial > 0
    epochs = read_epochs(tmp_path)
    assert len(epochs) == 12 and set(epochs["epoch"]) == {1, 2, 3, 4}
    assert set(EPOCH_KEYS) <= set(epochs.columns)
    trials = read_trials(tmp_path)
    assert len(trials) == 3 and set(trials["status"]) == {"completed"}


@pytest.mark.slow  # real Ray workers: 94 s of the default suite on a 2-core EPYC
def test_smoke_mode_with_a_real_tune_run(capsys):
    result = main(["--smoke-test", "--tune", "--checkpoint-mb", "0.1"])
    for label in ("tune, no sinks", "tune + sinks"):
        assert result[label]["results_per_s"]["median"] > 0
    assert result["trial_s_per_report"] == result["tune + sinks"]["trial_report_s"]["median"] > 0
    assert result["driver_s_per_result"] >= 1 / result["tune + sinks"]["results_per_s"]["median"]

import pytest

from benchmarks.bench_ingestion import main


@pytest.mark.slow  # real Ray workers: 106 s of the default suite on a 2-core EPYC
def test_smoke_mode_measures_both_modes_and_stores_every_result(tmp_path, capsys):
    out = main(["--smoke-test", "--modes", "none,json,sinks,direct", "--json", str(tmp_path / "ingest.json")])
    for mode in ("none", "json", "sinks"):
        row = out[mode]
        assert row["errors"] == 0 and row["results"] == 2 * 4
        assert row["results_per_s"] > 0 and row["ratio_to_minimum"] >= 1.0
        assert row["driver_cpu_cores"] > 0 and row["driver_rss_mb"]["peak"] >= row["driver_rss_mb"]["start"] > 0
    assert out["sinks"]["parquet_rows"] == 8
    assert out["sinks"]["mlflow_live"] + out["sinks"]["mlflow_dropped"] == 8  # the MLflow process's share
    assert out["sinks"]["mlflow_process_rss_peak_mb"] > 0
    assert out["sinks_vs_none"] > 0 and out["sinks_vs_json"] > 0
    assert out["direct"]["parquet_rows"] == 8 and out["direct"]["driver_results_per_s"] > 0
    assert (tmp_path / "ingest.json").is_file()
    assert "result: with sinks" in capsys.readouterr().out

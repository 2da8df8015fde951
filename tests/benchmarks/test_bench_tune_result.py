from benchmarks.bench_tune_result import main


def test_smoke_mode_measures_every_shape(tmp_path, capsys):
    out = main(["--smoke-test", "--json", str(tmp_path / "tune_result.json")])
    for shape in ("plain", "packed", "bare"):
        assert out[shape]["update_us"]["median"] > 0 and out[shape]["snapshot_ms"]["median"] > 0
        assert out[shape]["kb_per_trial"] > 0
    # packing keeps ~50 metrics out of Tune's per-trial statistics: far less held than plain
    assert out["packed"]["kb_per_trial"] < out["plain"]["kb_per_trial"] / 2
    assert (tmp_path / "tune_result.json").is_file()
    assert "result: packed holds" in capsys.readouterr().out

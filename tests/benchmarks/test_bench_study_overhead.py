from benchmarks.bench_study_overhead import main


def test_smoke_mode_runs_a_short_study(capsys):
    result = main(["--smoke-test"])
    [run] = result["runs"]
    assert run["trials"] == 2 and run["errors"] == 0 and run["slots"] >= 1
    # the study cannot finish before its longest trial, nor before its trials packed on its slots
    assert run["ratio_to_ideal"] >= 0.99
    assert run["ratio"] >= run["ratio_to_ideal"] - 1e-9
    out = capsys.readouterr().out
    assert "cpu:" in out and "result: median ratio" in out

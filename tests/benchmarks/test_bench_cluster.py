from benchmarks.bench_cluster import main


def test_smoke_mode_starts_a_cluster_and_resumes_a_killed_study(capsys):
    result = main(["--smoke-test"])
    assert result["cluster_start"]["runs"] == 1 and result["cluster_start"]["median"] > 0
    first, total = result["resume_first_result"]["median"], result["resume_total"]["median"]
    assert 0 < first <= total  # the first new result comes while the resume runs
    out = capsys.readouterr().out
    assert "two-node cluster start:" in out and "first new result" in out

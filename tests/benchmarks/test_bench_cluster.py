"""bench_cluster's smoke mode: a two-node cluster started and a killed study resumed, ~40 s on 2 cores, so a
slow test (`make test-slow`); the default suite resumes killed studies in tests/study and starts two-node
clusters in the slow tests of tests/study/test_cluster.py."""

import pytest

from benchmarks.bench_cluster import main


@pytest.mark.slow
def test_smoke_mode_starts_a_cluster_and_resumes_a_killed_study(capsys):
    result = main(["--smoke-test"])
    assert result["cluster_start"]["runs"] == 1 and result["cluster_start"]["median"] > 0
    first, total = result["resume_first_result"]["median"], result["resume_total"]["median"]
    assert 0 < first <= total  # the first new result comes while the resume runs
    out = capsys.readouterr().out
    assert "two-node cluster start:" in out and "first new result" in out

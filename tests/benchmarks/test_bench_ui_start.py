"""bench_ui_start's smoke mode starts one MLflow server (~40 s on 2 cores), so it is a slow test (`make test-slow`);
the default suite starts ``ui``'s server, and checks it runs without MLflow's job runner, in
tests/study/test_ui.py."""

import pytest

from benchmarks.bench_ui_start import main


@pytest.mark.slow
def test_smoke_mode_times_one_start_without_the_job_runner(capsys):
    result = main(["--smoke-test"])
    assert list(result) == ["jobs_off"]
    assert result["jobs_off"]["runs"] == 1 and result["jobs_off"]["median"] > 0
    assert result["jobs_off"]["processes"] >= 1 and result["jobs_off"]["huey"] == 0
    assert "to /health" in capsys.readouterr().out

"""Settings that would make the comparison unfair or crash late are refused up front: one line, exit 2,
nothing written."""

from __future__ import annotations

import pytest

from search_spaces.smoke import smoke_version
from search_spaces.study_file import parse_study
from tests.conftest import refusal_here
from tests.study.test_cli import SMOKE, assert_usage_error, write_study


@pytest.mark.parametrize("changes, needle", [
    ({"asha": {"grace_period": 5}}, "asha.grace_period=5 exceeds max_t=4 (training.epochs); allowed"),
    ({"asha": {"grace_period": 1, "max_t": 2}}, "asha.max_t=2 is below training.epochs=4"),
    ({"search": {"num_samples": 1}}, "search.num_samples=1 is below the 2 methods"),
    ({"final": {"seeds": 0}}, "final.seeds"),
])
def test_refused_before_anything_is_written(tmp_path, changes, needle):
    study = write_study(tmp_path, **changes)
    proc = refusal_here("run", study, "--storage", tmp_path / "runs")
    assert_usage_error(proc, needle)
    assert not (tmp_path / "runs").exists()


def test_smoke_version_adapts_asha_and_the_budget():
    spec = parse_study({**SMOKE, "training": {**SMOKE["training"], "epochs": 30, "device": "cuda"},
                        "asha": {"grace_period": 3, "reduction_factor": 3},
                        "methods": {"ce": {}, "ls": {}, "focal": {}, "lls": {}, "ols": {}},
                        "search": {"num_samples": 40}, "resources": {"cpu": 1, "gpu": 0.5},
                        "final": {"top": 2, "seeds": 3}})
    smoke = smoke_version(spec)
    assert smoke.training.epochs == 2 and smoke.asha.grace_period == 1
    assert smoke.search.num_samples == 5  # one trial per method at least
    assert (smoke.training.device, smoke.resources.gpu) == ("cpu", 0)
    assert (smoke.final.top, smoke.final.seeds) == (1, 1)

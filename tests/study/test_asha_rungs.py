"""ASHA's rungs: the epochs at which the study's scheduler (Ray's ASHA) stops trials are the report's rungs,
the checkpoint policy's decision epochs and the search benchmark's simulated rungs, whatever the reduction
factor."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from analysis.core.layout import StudyDir
from benchmarks.bench_search_pays import SimulatedAsha
from search_spaces.asha import asha_rungs
from search_spaces.study_file import parse_study
from study.report import report_inputs
from study.search import build_scheduler, checkpoint_policy


def _spec(epochs: int, strategy: str = "per_method", **asha):
    return parse_study({"name": "rungs", "data": {"dataset": "digits"}, "training": {"epochs": epochs},
                        "methods": {"ls": {"alpha": {"low": 0.01, "high": 0.4}}},
                        "search": {"num_samples": 8, "strategy": strategy}, "asha": asha})


def stop_epochs(scheduler, epochs: int, trials: int = 300, seed: int = 0) -> set[int]:
    """Runs ``trials`` trials one after the other through ``scheduler``, each reporting a random value every
    epoch until the scheduler stops it; the epochs at which it stopped one before its last."""
    rng = random.Random(seed)
    stopped = set()
    for i in range(trials):
        trial = SimpleNamespace(trial_id=f"t{i}", config={"loss": "ls"})
        scheduler.on_trial_add(None, trial)
        for epoch in range(1, epochs + 1):
            result = {"epoch": epoch, "val/acc": rng.random()}
            if scheduler.on_trial_result(None, trial, result) == "STOP":
                if epoch < epochs:
                    stopped.add(epoch)
                break
        scheduler.on_trial_complete(None, trial, result)  # as Tune does, with the last result
    return stopped


@pytest.mark.parametrize("strategy", ["per_method", "joint"])
def test_the_reports_rungs_are_where_asha_stopped_trials_at_reduction_factor_1_5(tmp_path, strategy):
    spec = _spec(8, strategy, grace_period=1, reduction_factor=1.5)
    rungs = report_inputs(StudyDir(tmp_path / "rungs"), spec).rungs
    assert stop_epochs(build_scheduler(spec), 8) == set(rungs)
    assert rungs == [1, 2, 3, 4, 6]  # milestones 1, 1.5, 2.25, 3.375, 5.06, 7.59; at epoch 8 every trial ends
    assert checkpoint_policy(spec).decision_epochs == set(rungs)
    assert list(SimulatedAsha(8, 1, 1.5).rungs) == rungs


@pytest.mark.parametrize(("grace", "epochs", "rf"), [(1, 12, 1.2), (2, 20, 3), (2, 20, 2.5), (1, 4, 2), (3, 30, 1.7)])
def test_the_rule_is_rays_for_other_settings(grace, epochs, rf):
    """At 1.2 several milestones fall in one epoch; Ray takes the skipped ones at later epochs (10 and 11
    here) that lie past no new milestone."""
    spec = _spec(epochs, grace_period=grace, reduction_factor=rf)
    assert stop_epochs(build_scheduler(spec), epochs) == set(asha_rungs(grace, epochs, rf))


def test_no_rungs_without_asha(tmp_path):
    spec = _spec(8, enabled=False)
    assert report_inputs(StudyDir(tmp_path / "rungs"), spec).rungs == []
    assert checkpoint_policy(spec).decision_epochs == frozenset()

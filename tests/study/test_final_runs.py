"""Final runs: each method's best configuration by the objective on validation, retrained with seeds every
method shares; ``smoothstudy final`` runs them for a study that has finished."""

from __future__ import annotations

import shutil

import pandas as pd

from analysis.results import read_rerun_trials, read_trials
from search_spaces.study_file import parse_study
from study.final import final_settings
from study.rerun import rerun_seeds, select_trials
from tests.conftest import run_cli


def test_the_choice_is_made_on_validation_never_on_test():
    trials = pd.DataFrame({
        "trial_id": ["a", "b", "c", "d"], "status": ["completed"] * 3 + ["stopped"],
        "config/loss": ["ls", "ls", "ce", "ls"],
        "val/acc": [0.90, 0.80, 0.85, 0.99], "test/acc": [0.70, 0.95, 0.80, 0.99],
    })
    chosen = select_trials(trials, "val/acc", "max", "best", 1)
    assert set(chosen["trial_id"]) == {"a", "c"}  # test/acc would pick b; d was stopped by ASHA


def test_final_settings_defaults_and_overrides():
    spec = parse_study({"name": "f", "data": {"dataset": "digits"}, "methods": {"ce": {}}})
    assert spec.final is None and (final_settings(spec).top, final_settings(spec).seeds) == (1, 3)
    with_final = parse_study({"name": "f", "data": {"dataset": "digits"}, "methods": {"ce": {}},
                              "final": {"top": 2, "seeds": 5}})
    assert (final_settings(with_final, seeds=2).top, final_settings(with_final, seeds=2).seeds) == (2, 2)


def test_final_command_on_a_finished_study(smoke_study, tmp_path):
    """``smoothstudy final`` on a copy of the finished smoke study (which has no final section): two seeds,
    the same two for both methods, recorded as reruns tagged final; the epochs they report before the end
    hold no test metric; the report's leaderboard uses them. Run twice, it trains nothing new."""
    study = tmp_path / "smoke"
    # without the reruns other tests may have added to the shared study
    shutil.copytree(smoke_study, study, ignore=shutil.ignore_patterns("report", "reruns"))
    proc = run_cli("final", str(study), "--seeds", "2", "--device", "cpu", timeout=600)
    trials = read_trials(study)
    finals = read_rerun_trials(study)
    assert set(finals["tag/kind"]) == {"final"} and set(finals["status"]) == {"completed"}
    seeds = finals.groupby("config/loss")["config/seed"].apply(lambda s: sorted(s.astype(int)))
    assert set(seeds.index) == set(trials["config/loss"])
    assert all(s == rerun_seeds(0, 2) for s in seeds)  # shared across methods
    best = select_trials(trials, "val/acc", "max", "best", 1)
    assert set(finals["tag/source_trial"]) == set(best["trial_id"])
    epochs = pd.read_parquet(study / "parquet" / "reruns" / "epochs")
    assert not [c for c in epochs.columns if c.startswith("test/") and epochs[c].notna().any()]
    report = (study / "report" / "report.md").read_text()
    assert "single search trials" not in report and "report:" in proc.stdout
    again = run_cli("final", str(study), "--seeds", "2", "--device", "cpu", timeout=600)
    assert "already recorded" in again.stdout and len(read_rerun_trials(study)) == len(finals)

"""The report's fairness statements: without final runs it says its numbers are single search trials and
shows what each method's search spent; with final runs, those (not other reruns) make the leaderboard."""

from __future__ import annotations

import pandas as pd

from analysis.leaderboard import build_leaderboard
from analysis.spend import spend_by_method
from analysis.study_report import ReportInputs, write_study_report
from tests.analysis.test_report_synthetic import make_synthetic_study


def test_without_final_runs_the_report_says_so_and_shows_the_spend(tmp_path):
    study = make_synthetic_study(tmp_path, "single", reruns=False)
    md = write_study_report(ReportInputs(study, [("val/acc", "max")], resources=(2.0, 0.5)),
                            tmp_path / "out").markdown.read_text()
    assert "These numbers are single search trials" in md
    assert "| method | search trials | completed | stopped by ASHA | epochs | CPU-seconds | GPU-seconds |" in md
    from analysis.results import read_trials

    spend = spend_by_method(read_trials(study), 2.0, 0.5).set_index("method")
    assert spend.loc["ls", ["trials", "completed", "stopped", "epochs"]].tolist() == [3, 2, 1, 5]
    assert spend.loc["label_relaxation", ["trials", "stopped", "epochs"]].tolist() == [2, 1, 3]
    assert (spend["gpu_s"] * 4 == spend["cpu_s"]).all()


def test_with_reruns_the_report_does_not_call_them_single_trials(tmp_path):
    study = make_synthetic_study(tmp_path, "rerun")
    md = write_study_report(ReportInputs(study, [("val/acc", "max")]), tmp_path / "out").markdown.read_text()
    assert "single search trials" not in md


def test_final_runs_make_the_leaderboard_when_reruns_share_their_seeds():
    trials = pd.DataFrame({"trial_id": ["a"], "status": ["completed"], "config/loss": ["ls"], "val/acc": [0.9]})
    runs = pd.DataFrame({
        "trial_id": ["final-a-seed1", "final-a-seed2", "rerun-a-seed1"],
        "status": ["completed"] * 3, "tag/source_trial": ["a"] * 3, "tag/kind": ["final", "final", "rerun"],
        "config/seed": [1, 2, 1], "test/acc": [0.80, 0.82, 0.99],
    })
    [ls] = build_leaderboard(trials, runs, "val/acc", "max").methods
    assert ls.source == "reruns" and list(ls.seeds["trial_id"]) == ["final-a-seed1", "final-a-seed2"]

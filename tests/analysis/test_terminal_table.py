import pytest

from analysis.terminal_table import build_report, format_table
from study.sinks.base import TrialEnd, TrialStart
from study.sinks.parquet import ParquetSink

# (trial, loss, params, lr, status, val/acc, val/nll, test/acc, test/ece)
TRIALS = [
    ("ce_1", "ce", {}, 0.1, "completed", 0.80, 0.60, 0.79, 0.050),
    ("ce_2", "ce", {}, 0.01, "completed", 0.82, 0.55, 0.81, 0.040),
    ("ls_1", "ls", {"alpha": 0.1}, 0.1, "completed", 0.86, 0.45, 0.85, 0.020),  # the planted best
    ("ls_2", "ls", {"alpha": 0.3}, 0.1, "stopped", 0.70, 0.90, None, None),
    ("ls_3", "ls", {"alpha": 0.2}, 0.1, "error", 0.99, 0.10, None, None),  # errored: never ranked
    ("fl_1", "focal", {"gamma": 2.0}, 0.01, "stopped", 0.84, 0.50, None, None),
    ("fl_2", "focal", {"gamma": 1.0}, 0.01, "running", 0.95, 0.20, None, None),  # not finished: not ranked
]


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs") / "planted"
    sink = ParquetSink(root / "parquet", "planted")
    for trial_id, loss, params, lr, status, acc, nll, test_acc, test_ece in TRIALS:
        config = {
            "loss": loss,
            "lr": lr,
            "batch_size": 64,
            **{f"loss_params.{k}": v for k, v in params.items()},
        }
        sink.trial_started(TrialStart(trial_id, config))
        sink.epoch(trial_id, 1, {"val/acc": acc - 0.1, "val/nll": nll + 0.2})
        sink.epoch(trial_id, 2, {"val/acc": acc, "val/nll": nll})
        if status == "running":
            continue
        final = {"val/acc": acc, "val/nll": nll}
        if test_acc is not None:
            final.update({"test/acc": test_acc, "test/ece": test_ece})
        sink.trial_ended(TrialEnd(trial_id, status, "asha" if status == "stopped" else "", final))
    sink.close()
    return root


def test_best_completed_trial_per_method_sorted_by_objective(study_dir):
    report = build_report(study_dir, "val/acc", "max")
    # completed trials only, as the full report's leaderboard and `rerun` rank: focal's only finished trial
    # was stopped by ASHA (a shorter training), so focal is listed as not ranked
    assert [(r.method, r.trial_id) for r in report.results] == [
        ("ls", "ls_1"),
        ("ce", "ce_2"),
    ]
    assert report.unranked == ["focal"]
    best = report.results[0]
    assert best.objective == 0.86 and best.status == "completed" and best.epochs_run == 2
    assert best.hparams == {"loss_params.alpha": 0.1, "lr": 0.1}  # lr varies across the study; batch_size not
    assert (
        best.metrics["test/acc"] == 0.85
        and best.metrics["test/ece"] == 0.02
        and best.metrics["val/nll"] == 0.45
    )
    assert best.trials == 1  # ls_1; the stopped ls_2 and the errored ls_3 are not ranked
    assert report.status_counts == {"completed": 3, "stopped": 2, "error": 1, "running": 1}


def test_min_mode_ranks_the_lowest_first(study_dir):
    report = build_report(study_dir, "val/nll", "min")
    assert [(r.trial_id, r.objective) for r in report.results] == [
        ("ls_1", 0.45),
        ("ce_2", 0.55),
    ]


def test_table(study_dir):
    report = build_report(study_dir, "val/acc", "max")
    table = format_table(report)
    lines = table.splitlines()
    assert "val/acc (higher is better)" in lines[0]
    assert lines[1].split()[:4] == ["rank", "method", "trial", "val/acc"]
    assert lines[3].split()[:4] == ["1", "ls", "ls_1", "0.8600"] and "alpha=0.1, lr=0.1" in lines[3]
    assert "test/acc" in lines[1] and "val/nll" in lines[1]
    assert len({len(line) for line in lines[1:3]}) == 1  # header and rule align
    assert table.index(" ls ") < table.index(" ce ") and " focal " not in table.split("Not ranked")[0]
    assert lines[-1].startswith("Not ranked") and lines[-1].endswith("focal.")


def test_terminal_table_and_leaderboard_rank_the_same_trials(study_dir):
    """The table printed after a study, report.md's leaderboard and `rerun --trial best` all rank completed
    trials only."""
    from analysis.leaderboard import best_trials
    from analysis.results import read_trials

    report = build_report(study_dir, "val/acc", "max")
    board = best_trials(read_trials(study_dir), "val/acc", "max")
    assert [r.trial_id for r in report.results] == list(board["trial_id"])


def test_no_completed_trial_yet(tmp_path):
    sink = ParquetSink(tmp_path / "parquet", "early")
    sink.trial_started(TrialStart("s", {"loss": "ls"}))
    sink.epoch("s", 1, {"val/acc": 0.5})
    sink.trial_ended(TrialEnd("s", "stopped", "asha", {"val/acc": 0.5}))
    sink.close()
    report = build_report(tmp_path, "val/acc", "max")
    assert report.results == [] and report.unranked == ["ls"]
    assert format_table(report) == "early: no completed trial with val/acc yet"


def test_bad_arguments_are_named(study_dir):
    with pytest.raises(ValueError, match="mode='best'.*allowed: max, min"):
        build_report(study_dir, "val/acc", "best")
    with pytest.raises(ValueError, match="objective='val/auroc'.*known: .*val/acc"):
        build_report(study_dir, "val/auroc", "max")


# -- the answer over final runs -----------------------------------------------------------------------
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.formatting import fmt_interval  # noqa: E402
from analysis.stats import mean_ci  # noqa: E402
from analysis.terminal_table import BEST_MARK, answer_dict, build_answer, format_answer, verdicts  # noqa: E402

NOISE = np.array([0.002, -0.001, 0.0, -0.002, 0.001])


def final_study(test_acc: dict[str, float], seeds: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One completed search trial per method and its final runs over ``seeds`` shared seeds: test/acc is the
    method's value plus a seed effect every method shares (plus a small rotation of its own)."""
    trials = pd.DataFrame({"trial_id": [f"t_{m}" for m in test_acc], "status": "completed",
                           "config/loss": list(test_acc), "val/acc": [0.9 - i / 100 for i in range(len(test_acc))],
                           "study": "hand"})
    rows = []
    for k, (method, acc) in enumerate(test_acc.items()):
        for s in range(seeds):
            rows.append({"trial_id": f"final-t_{method}-seed{s}", "status": "completed", "tag/kind": "final",
                         "tag/source_trial": f"t_{method}", "config/loss": method, "config/seed": 1000 + s,
                         "val/acc": acc + 0.01, "test/acc": acc + NOISE[s] + np.roll(NOISE, k)[s] / 4})
    return trials, pd.DataFrame(rows)


def test_ties_are_shown_as_ties_and_a_clear_best_is_marked_alone(tmp_path):
    trials, finals = final_study({"ls": 0.860, "maxsup": 0.8601, "ce": 0.850})
    answer = build_answer(tmp_path, [("val/acc", "max")], trials=trials, reruns=finals)
    assert answer.has_final_runs and answer.seeds == 5 and answer.rows[-1] == "ce"
    assert answer.board.best["test/acc"] == {"ls", "maxsup"}  # tied for best, both told apart from ce
    assert dict(verdicts(answer))["accuracy"].startswith("maxsup ≈ ls")
    text = format_answer(answer)
    assert "over 5 shared seeds" in text.splitlines()[0] and "final runs" in text.splitlines()[0]
    for method in ("ls", "maxsup", "ce"):
        iv = mean_ci(finals.loc[finals["config/loss"] == method, "test/acc"].to_numpy())
        row = next(line for line in text.splitlines() if line.startswith(f"{method} "))
        assert fmt_interval(iv) in row and (f"{fmt_interval(iv)} {BEST_MARK}" in row) == (method != "ce")

    trials, finals = final_study({"ls": 0.88, "maxsup": 0.86, "ce": 0.85})
    clear = build_answer(tmp_path, [("val/acc", "max")], trials=trials, reruns=finals)
    assert clear.board.best["test/acc"] == {"ls"}
    assert dict(verdicts(clear))["accuracy"].startswith("ls (p < 0.05")


def test_no_mark_when_no_method_is_told_apart(tmp_path):
    trials, finals = final_study({"ls": 0.86, "maxsup": 0.86, "ce": 0.86})
    flat = build_answer(tmp_path, [("val/acc", "max")], trials=trials, reruns=finals)
    assert flat.board.best["test/acc"] == set() and BEST_MARK not in "\n".join(format_answer(flat).splitlines()[1:5])
    assert dict(verdicts(flat))["accuracy"].startswith("no method differs")
    data = answer_dict(flat)
    assert data["kind"] == "final" and len(data["shared_seeds"]) == 5
    assert not any(m["metrics"]["test/acc"]["best"] for m in data["methods"])


def test_final_runs_trained_on_the_validation_split_show_no_validation_column(tmp_path):
    trials, finals = final_study({"ls": 0.88, "ce": 0.85})
    held_out = build_answer(tmp_path, [("val/acc", "max")], trials=trials, reruns=finals)
    assert held_out.columns[0] == "val/acc" and not held_out.trained_on_val
    assert "not held out" not in format_answer(held_out)
    finals["config/train_on"] = "train_val"
    answer = build_answer(tmp_path, [("val/acc", "max")], trials=trials, reruns=finals)
    assert answer.trained_on_val and "val/acc" not in answer.columns and answer.columns[0] == "test/acc"
    text = format_answer(answer)
    assert "val/acc" not in text.splitlines()[1] and "not held out" in text
    data = answer_dict(answer)
    assert answer.rows == ["ls", "ce"] and "val/acc" not in data["methods"][0]["metrics"] and data["trained_on_val"]
    # the search trials' own validation metrics are held out: without final runs nothing is left out
    alone = build_answer(tmp_path, [("val/acc", "max")], trials=trials, reruns=finals.iloc[0:0])
    assert not alone.trained_on_val

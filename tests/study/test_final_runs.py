"""Final runs: each method's best configuration by the objective on validation (and by each further selection
of ``final.also_chosen_by``, a configuration chosen twice trained once), retrained with seeds every method
shares; ``smoothstudy final`` runs them for a study that has finished."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml

from analysis.core.errors import UsageError
from analysis.results import read_rerun_trials, read_trials
from search_spaces.study_file import parse_study
from study.final import final_objectives, final_settings, final_trials
from study.rerun import rerun_configs, rerun_seeds, select_trials
from tests.conftest import run_cli

# ls: a is best by val/acc, b by val/ece (e, better still, was stopped); ce: d is the only one, so both choose it
TRIALS = pd.DataFrame({
    "trial_id": ["a", "b", "c", "d", "e"], "status": ["completed"] * 4 + ["stopped"],
    "config/loss": ["ls", "ls", "ls", "ce", "ls"], "config/loss_params.alpha": [0.1, 0.2, 0.3, None, 0.4],
    "config/seed": [0, 1, 2, 3, 4],
    "val/acc": [0.90, 0.85, 0.80, 0.88, 0.99], "val/ece": [0.05, 0.02, 0.10, 0.04, 0.001],
})


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


def test_the_union_of_the_selections_each_trial_once():
    spec = parse_study({"name": "f", "data": {"dataset": "digits"}, "methods": {"ce": {}, "ls": {}},
                        "final": {"seeds": 2, "also_chosen_by": [{"metric": "val/ece", "mode": "min"}]}})
    objectives = final_objectives(spec, final_settings(spec))
    assert objectives == [("val/acc", "max"), ("val/ece", "min")]
    chosen = final_trials(TRIALS, objectives, top=1)
    assert list(chosen["trial_id"]) == ["a", "d", "b"]  # d, chosen by both, once
    sources = [source for source, _ in rerun_configs(chosen, 2, None, "cpu", 0)]
    assert sources == ["a", "a", "d", "d", "b", "b"]
    # a selection that repeats the first objective, or one that chooses the same trials, adds nothing
    again = parse_study({**spec.model_dump(), "final": {"also_chosen_by": [{"metric": "val/acc", "mode": "max"}]}})
    assert final_objectives(again, final_settings(again)) == [("val/acc", "max")]
    assert list(final_trials(TRIALS, [("val/acc", "max"), ("val/nll", "min"), ("train/loss", "min")], 1)["trial_id"]
                ) == ["a", "d"]  # metrics no trial has choose nothing
    assert list(final_trials(TRIALS, [("val/acc", "max"), ("val/ece", "min")], 2)["trial_id"]) == ["a", "d", "b"]
    with pytest.raises(UsageError, match="no completed trial"):
        final_trials(TRIALS[TRIALS["status"] != "completed"], objectives, 1)


def test_final_command_on_a_finished_study(smoke_study, tmp_path):
    """``smoothstudy final`` on a copy of the finished smoke study, given a final section that also chooses
    each method's worst trial by val/acc: two seeds, the same two for both methods, for each configuration
    either choice picks (CE's one trial, both pick: once), recorded as reruns tagged final; the epochs they
    report before the end hold no test metric; the report's leaderboard uses them. Run twice, it trains
    nothing new."""
    study = tmp_path / "smoke"
    shutil.copytree(smoke_study, study, ignore=shutil.ignore_patterns("report"))
    spec = yaml.safe_load((study / "study.yaml").read_text())
    spec["final"] = {"also_chosen_by": [{"metric": "val/acc", "mode": "min"}]}
    (study / "study.yaml").write_text(yaml.safe_dump(spec))
    proc = run_cli("final", str(study), "--seeds", "2", "--device", "cpu", timeout=600)
    assert "by val/acc (max) and by val/acc (min)" in proc.stdout
    trials = read_trials(study)
    finals = read_rerun_trials(study)
    assert set(finals["tag/kind"]) == {"final"} and set(finals["status"]) == {"completed"}
    assert set(finals["config/loss"]) == set(trials["config/loss"])
    seeds = finals.groupby("tag/source_trial")["config/seed"].apply(lambda s: sorted(s.astype(int)))
    assert all(s == rerun_seeds(0, 2) for s in seeds)  # shared across methods, each configuration once
    chosen = final_trials(trials, [("val/acc", "max"), ("val/acc", "min")], 1)
    assert set(seeds.index) == set(chosen["trial_id"])
    epochs = pd.read_parquet(study / "parquet" / "reruns" / "epochs")
    assert not [c for c in epochs.columns if c.startswith("test/") and epochs[c].notna().any()]
    report = (study / "report" / "report.md").read_text()
    assert "single search trials" not in report and "report:" in proc.stdout
    again = run_cli("final", str(study), "--seeds", "2", "--device", "cpu", timeout=600)
    assert "already recorded" in again.stdout and len(read_rerun_trials(study)) == len(finals)
    check_the_answer(study, proc.stdout, trials, finals)


def test_final_runs_on_training_and_validation_splits_through_ray(smoke_study, tmp_path):
    """``final.train_on: train_val`` (the reproduction's protocol) end to end: the final runs train as Ray tasks
    with it in their configuration, Parquet records it, and the answer leaves out the validation column they
    trained on and says why. (The trainer's use of it: tests/trainables/test_protocol_switches.py.)"""
    study = tmp_path / "smoke"
    shutil.copytree(smoke_study, study, ignore=shutil.ignore_patterns("report"))
    spec = yaml.safe_load((study / "study.yaml").read_text())
    spec["final"] = {"train_on": "train_val"}
    (study / "study.yaml").write_text(yaml.safe_dump(spec))
    proc = run_cli("final", str(study), "--seeds", "1", "--device", "cpu", timeout=600)
    assert "with 1 seeds on training and validation splits together" in proc.stdout, proc.stdout
    finals = read_rerun_trials(study)
    assert set(finals["config/train_on"]) == {"train_val"} and set(finals["status"]) == {"completed"}
    assert set(finals["config/loss"]) == set(read_trials(study)["config/loss"])
    answer = proc.stdout.splitlines()
    header = answer[next(i for i, line in enumerate(answer) if "the answer." in line) + 1].split()
    assert "val/acc" not in header and "test/acc" in header and "not held out" in proc.stdout


def check_the_answer(study, stdout: str, trials: pd.DataFrame, finals: pd.DataFrame) -> None:
    """The answer ``final`` printed last: per method the mean ± 95% CI over its final runs' seeds of the
    objective and test/acc, recomputed here from Parquet; the MLflow parent run carries the same means, a winner
    per column and each method's choice; the final runs' MLflow runs are named for what they are."""
    from mlflow import MlflowClient

    from analysis.core.layout import StudyDir
    from analysis.formatting import fmt_interval
    from analysis.leaderboard import best_trials
    from analysis.stats import mean_ci
    from study.report import run_map_of

    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "the answer." in line)
    assert "over 2 shared seeds" in lines[start] and "final runs" in lines[start]
    header = lines[start + 1].split()
    assert header[:3] == ["method", "configuration", "choice"] and header[3] == "val/acc" and "test/acc" in header
    best = best_trials(trials, "val/acc", "max").set_index("config/loss")
    rows = {line.split()[0]: line for line in lines[start + 3:start + 3 + len(best)]}
    assert set(rows) == set(best.index)
    means = {}
    for method, trial in best["trial_id"].items():
        mine = finals[finals["tag/source_trial"] == trial]
        for key in ("val/acc", "test/acc"):
            iv = mean_ci(mine[key].astype(float).to_numpy())
            assert iv.n == 2 and fmt_interval(iv) in rows[method], (method, key, fmt_interval(iv), rows[method])
            means[(method, key)] = iv.mean
    assert any(line.startswith("Verdicts") for line in lines[start:])

    client = MlflowClient(StudyDir(study).default_mlflow_uri)
    runs = run_map_of(StudyDir(study))
    parent = client.get_run(runs["parent"])
    for (method, key), mean in means.items():
        assert parent.data.metrics[f"final/{method}/{key}"] == pytest.approx(mean)
        assert f"choice/{method}/val/acc" in parent.data.tags
    assert parent.data.tags["final/seeds"] == "2" and parent.data.tags["winner/test/acc"]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/answer.txt", "report/leaderboard.csv"} <= artifacts
    for run_id in (runs["trials"][t] for t in finals["trial_id"]):
        run = client.get_run(run_id)
        assert run.data.tags["smoothstudy.kind"] == "final" and "kind" not in run.data.tags
        assert " · final seed " in run.info.run_name and run.info.run_name.startswith(run.data.params["loss"])


@pytest.mark.parametrize("states, trained", [
    ({"completed": 2, "running": 1}, False),  # stopped part way (Ctrl-C): resume continues, then trains them
    ({"completed": 2, "lost": 1}, False),
    ({"completed": 2, "stopped": 1}, True),
])
def test_final_runs_wait_until_every_search_trial_has_ended(tmp_path, monkeypatch, states, trained):
    from collections import Counter

    import study.final as final
    import study.state as state
    from analysis.core.layout import StudyDir

    spec = parse_study({"name": "s", "methods": {"ce": {}, "ls": {}}, "search": {"num_samples": 3, "strategy": "joint"},
                        "final": {"top": 1, "seeds": 2}})
    calls, said = [], []
    monkeypatch.setattr(state, "trial_states", lambda study: Counter(states))
    monkeypatch.setattr(final, "run_final", lambda *a, **k: calls.append(a))
    final.final_if_asked(StudyDir(tmp_path / "s"), spec, echo=said.append)
    assert bool(calls) == trained
    assert trained or said == [f"no final runs yet: 2 of the search's 3 trials have ended; 'smoothstudy resume "
                               f"{tmp_path / 's'}' continues the search, then trains them"]

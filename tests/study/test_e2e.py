"""The smoke study for real: Ray Tune + Optuna (TPE) + ASHA + MLflow on SQLite + Parquet, then report and
rerun on its output."""

from __future__ import annotations

import shutil

import pandas as pd
import yaml
from mlflow import MlflowClient

from analysis.core.layout import StudyDir
from analysis.results import read_epochs, read_trials
from study.report import report_inputs
from study.state import load_study_of
from tests.conftest import ROOT, checksums, run_cli

SMOKE = yaml.safe_load((ROOT / "studies" / "smoke.yaml").read_text())
EPOCHS = SMOKE["training"]["epochs"]
TRIALS = SMOKE["search"]["num_samples"]


def test_every_trial_ran_and_asha_stopped_some(smoke_study):
    trials = read_trials(smoke_study)
    assert len(trials) == TRIALS
    assert set(trials["status"]) <= {"completed", "stopped"}
    assert (trials["status"] == "stopped").sum() >= 1, "ASHA stopped no trial"
    assert (trials["status"] == "completed").sum() >= 1
    assert set(trials["config/loss"]) <= set(SMOKE["methods"])
    # the epochs ASHA stopped trials at are the report's rungs (grace 1, factor 2, 4 epochs: 1 and 2)
    rungs = report_inputs(StudyDir(smoke_study), load_study_of(StudyDir(smoke_study))).rungs
    assert set(trials.loc[trials["status"] == "stopped", "epochs_run"]) <= set(rungs) == {1, 2}


def test_parquet_rows_match_epochs_run_without_duplicates(smoke_study):
    epochs = read_epochs(smoke_study)
    trials = read_trials(smoke_study).set_index("trial_id")
    assert not epochs.duplicated(["trial_id", "epoch"]).any()
    for trial_id, rows in epochs.groupby("trial_id"):
        expected = EPOCHS if trials.loc[trial_id, "status"] == "completed" else int(rows["epoch"].max())
        assert sorted(rows["epoch"]) == list(range(1, expected + 1))
        assert rows["val/acc"].notna().all()
    completed = trials[trials["status"] == "completed"]
    for column in ("test/acc", "test/ece", "test/aurc", "test/aurc_lognorm", "test/r2", "test/ece_ts"):
        assert completed[column].notna().all(), column
    samples = list((smoke_study / "parquet" / "samples").glob("*.parquet"))
    assert len(samples) == len(completed)


def test_one_mlflow_child_run_per_trial_with_epoch_metrics(smoke_study):
    client = MlflowClient(f"sqlite:///{smoke_study / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("smoke")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    trials = read_trials(smoke_study).set_index("trial_id")
    searched = [r for r in children if r.data.tags["smoothstudy.kind"] == "trial"]
    assert sorted(r.data.tags["smoothstudy.trial_id"] for r in searched) == sorted(trials.index)
    for run in searched:
        trial = run.data.tags["smoothstudy.trial_id"]
        history = client.get_metric_history(run.info.run_id, "val/acc")
        steps = sorted(m.step for m in history)
        assert steps == list(range(1, int(trials.loc[trial, "epochs_run"]) + 1))
        assert run.data.params["loss"] == trials.loc[trial, "config/loss"]
        # named for what it is: the method first, then its hyperparameters, then the trial's short id
        assert run.info.run_name.startswith(trials.loc[trial, "config/loss"])
        assert run.info.run_name.endswith(trial[-8:]) and list(run.data.params)[0] == "loss"
    artifacts = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    assert "study.yaml" in artifacts
    assert list((smoke_study / "mlartifacts").rglob("reliability.png")), "trial plots are not under the study"


def test_cli_summary_points_to_the_files(smoke_study):
    out = (smoke_study / "cli_output.txt").read_text()
    for needle in ("MLflow store:", "Parquet files:", "Report:", "smoothstudy ui",
                   "best completed trial per method"):
        assert needle in out


def test_report_and_rerun_work_on_the_result(smoke_study, tmp_path):
    # on a copy: a rerun makes the study's answer its reruns, and other tests read the shared study's answer
    study = tmp_path / smoke_study.name
    shutil.copytree(smoke_study, study, ignore=shutil.ignore_patterns("report", "cli_output.txt"))
    original = checksums(smoke_study)
    proc = run_cli("report", str(study))
    assert (study / "report" / "report.md").exists()
    assert "ls" in proc.stdout
    proc = run_cli("rerun", str(study), "--trial", "best", "--seeds", "1", "--epochs", "2", "--device", "cpu")
    reruns = pd.read_parquet(study / "parquet" / "reruns" / "trials.parquet")
    assert len(reruns) >= 1 and (reruns["status"] == "completed").all()
    assert "test/acc" in proc.stdout
    assert checksums(smoke_study) == original
    client = MlflowClient(f"sqlite:///{study / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("smoke")
    tagged = client.search_runs([experiment.experiment_id], "tags.`smoothstudy.kind` = 'rerun'")
    assert len(tagged) == len(reruns)

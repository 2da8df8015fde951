"""kill -9 of the driver mid-study, then `smoothstudy resume`: every trial ends, none twice, nothing lost."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from analysis.results import read_trials
from benchmarks.harness import epoch_parts, start_driver, wait_for
from study.optuna_store import optuna_trials
from tests.conftest import kill_processes_under, ray_env, refusal_here, run_cli, tiny_study

TRIALS, EPOCHS = 5, 4






def raw_epoch_rows(study_dir: Path) -> list[tuple[str, int]]:
    """Every (trial_id, epoch) row in the part files, without the readers' de-duplication."""
    rows = []
    for part in epoch_parts(study_dir):
        table = pq.read_table(part, columns=["trial_id", "epoch"])
        rows += list(zip(table["trial_id"].to_pylist(), table["epoch"].to_pylist()))
    return rows


def assert_study_complete(study_dir: Path, trials_asked: int, epochs: int, mlflow_uri: str) -> None:
    """Each trial ended (finished or stopped by ASHA), its epochs 1..k each once in Parquet, one MLflow run."""
    everything = read_trials(study_dir)
    # lost: started before the crash but missing from the experiment state Ray saved; the search replaced them
    lost = everything[everything["status"] == "lost"]
    trials = everything[everything["status"] != "lost"]
    assert len(trials) == trials_asked
    assert set(trials["status"]) <= {"completed", "stopped"}, trials[["trial_id", "status", "reason"]]
    rows = raw_epoch_rows(study_dir)
    assert len(rows) == len(set(rows)), "duplicate epoch rows in Parquet"
    for trial_id, status, epochs_run in zip(trials["trial_id"], trials["status"], trials["epochs_run"]):
        got = sorted(e for t, e in rows if t == trial_id)
        assert got == list(range(1, epochs_run + 1)), (trial_id, got)
        assert (epochs_run == epochs) == (status == "completed")
    client = MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name(study_dir.name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    kinds = [r.data.tags.get("smoothstudy.kind") for r in runs]
    assert kinds.count("study") == 1
    trial_ids = sorted(r.data.tags["smoothstudy.trial_id"] for r in runs if r.data.tags.get("smoothstudy.kind") == "trial")
    assert trial_ids == sorted(everything["trial_id"]), "a trial with no or several MLflow runs"
    for run in runs:
        if run.data.tags.get("smoothstudy.trial_id") in set(lost["trial_id"]):
            assert run.info.status == "KILLED" and run.data.tags["smoothstudy.status"] == "lost"
    for run in runs:
        if run.data.tags.get("smoothstudy.kind") == "trial":
            history = client.get_metric_history(run.info.run_id, "val/acc")
            steps = [m.step for m in history]
            assert sorted(steps) == sorted(set(steps)), (run.info.run_name, steps)  # no step logged twice


@pytest.fixture
def ray_tmp():
    env = ray_env()
    yield env
    kill_processes_under(env["RAY_TMPDIR"])


@pytest.mark.slow  # about 2.5 min on 2 cores: two drivers, each starting Ray
def test_kill_driver_then_resume(tmp_path, ray_tmp):
    study_file = tiny_study(tmp_path, "crash", search={"num_samples": TRIALS, "max_concurrent": 2,
                                                       "n_startup_trials": 2})
    storage = tmp_path / "runs"
    study_dir = storage / "crash"
    driver = start_driver(study_file, storage, ray_tmp)
    try:
        wait_for(lambda: len(epoch_parts(study_dir)) >= 4, 240, "4 epoch results", driver)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    kill_processes_under(ray_tmp["RAY_TMPDIR"])  # Ray's own processes die with the driver; make sure
    before = set(raw_epoch_rows(study_dir))
    assert len(read_trials(study_dir)) < TRIALS or "running" in set(read_trials(study_dir)["status"])

    status = run_cli("status", str(study_dir)).stdout
    assert "can be resumed: smoothstudy resume" in status, status

    started = time.time()
    run_cli("resume", str(study_dir), env=ray_tmp)
    first_new = min((p.stat().st_mtime for p in epoch_parts(study_dir)
                     if p.stat().st_mtime >= started), default=None)
    assert first_new is not None
    print(f"resume: first new result {first_new - started:.1f} s after `smoothstudy resume` started")

    assert before <= set(raw_epoch_rows(study_dir))
    assert_study_complete(study_dir, TRIALS, EPOCHS, f"sqlite:///{study_dir / 'mlflow.db'}")
    study = SimpleNamespace(trials=optuna_trials(f"sqlite:///{study_dir / 'optuna.db'}", "crash"))
    ended = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    # A lost trial may have ended in Optuna already (ASHA stopped it and the searcher heard of it before the
    # kill): its PRUNED value is true and stays; it is the only way Optuna can hold more than TRIALS ended.
    lost = int((read_trials(study_dir)["status"] == "lost").sum())
    assert TRIALS <= len(ended) <= TRIALS + lost
    assert all(t.state.name == "FAIL" for t in study.trials if t not in ended)  # only orphans of the crash
    status = run_cli("status", str(study_dir)).stdout
    assert "finished: every trial has ended" in status and "optuna sees:" in status, status


def test_resume_refuses_a_directory_without_ray_state(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "study.yaml").write_text(Path(tiny_study(tmp_path, "s")).read_text())
    proc = refusal_here("resume", tmp_path / "s")
    assert proc.returncode == 2 and "no Ray experiment state" in proc.stderr


def test_resume_back_fills_what_a_killed_drivers_mlflow_never_wrote(tmp_path):
    """A trial that ended just before the driver died is in Parquet only; the resumed study never sees it
    again, so its end back-fills MLflow. MLflow out of reach is one line, not a failure."""
    from analysis.core.layout import StudyDir
    from study.resume import backfill_mlflow
    from study.sinks.base import TrialEnd, TrialStart
    from study.sinks.parquet import ParquetSink

    study = StudyDir(tmp_path / "crash")
    sink = ParquetSink(study.parquet, "crash")
    sink.trial_started(TrialStart("a", {"loss": "ce"}))
    sink.epoch("a", 1, {"val/acc": 0.5})
    sink.trial_ended(TrialEnd("a", "completed", final_metrics={"test/acc": 0.4}))
    sink.close()
    lines = []
    backfill_mlflow(study, lines.append)
    client = MlflowClient(study.mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("crash").experiment_id],
                              filter_string="tags.`smoothstudy.kind` = 'trial'")
    assert [r.data.tags["smoothstudy.trial_id"] for r in runs] == ["a"] and runs[0].info.status == "FINISHED"
    assert lines and lines[0].startswith("MLflow back-filled")
    (study.root / "mlflow.db").unlink()
    (study.root / "mlflow.db").mkdir()  # a store that cannot be opened
    backfill_mlflow(study, lines.append)
    assert len(lines) == 2 and "smoothstudy mlflow-sync" in lines[1]

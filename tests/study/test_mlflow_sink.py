import socket
import warnings

import numpy as np
import pytest
from mlflow import MlflowClient

from analysis.core.statuses import TrialStatus, mlflow_run_status
from study.sinks.base import TrialEnd, TrialStart
from study.sinks.mlflow_runs import find_study_runs
from study.sinks.mlflow_sink import MlflowSink
from study.sinks.mlflow_sync import sync_from_parquet
from study.sinks.parquet import ParquetSink


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory):
    """One SQLite store per module: creating it runs MLflow's migrations (seconds)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()
    return uri


def _sink(uri, study, tmp_path, **kw):
    return MlflowSink(
        uri,
        study,
        study,
        kw.pop("study_file", None),
        kw.pop("settings", {}),
        **kw,
    )


def _children(client, sink):
    exp = client.get_experiment_by_name(sink._args[1])
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    return {r.data.tags["smoothstudy.trial_id"]: r for r in runs if "smoothstudy.trial_id" in r.data.tags}


def _history(client, run_id, key):
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_parent_children_params_metrics_and_artifacts(tracking_uri, tmp_path):
    study_file = tmp_path / "study.yaml"
    study_file.write_text("name: s1\n")
    sink = _sink(
        tracking_uri,
        "s1",
        tmp_path,
        study_file=study_file,
        settings={"epochs": 3, "asha": {"grace_period": 1}},
    )
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    np.save(artifacts / "lspp_targets.npy", np.eye(3))
    (artifacts / "reliability.png").write_bytes(b"\x89PNG")
    (artifacts / "samples.parquet").write_bytes(b"parquet")
    for trial_id, alpha in [("t1", 0.1), ("t2", 0.2)]:
        sink.trial_started(
            TrialStart(trial_id, {"loss": "ls", "loss_params.alpha": alpha}, {"kind": "search"})
        )
        for epoch in (1, 2):
            sink.epoch(trial_id, epoch, {"epoch": epoch, "val/acc": alpha + epoch / 10, "time/train_s": 1.5})
    sink.trial_ended(TrialEnd("t1", "completed", "", {"val/acc": 0.3, "test/acc": 0.9}, artifacts))
    sink.trial_ended(TrialEnd("t2", "diverged", "train/loss became nan in epoch 3"))
    sink.close()
    assert sink.available

    client = MlflowClient(tracking_uri)
    # the UI opens the experiment on its runs table, not on the GenAI overview
    assert client.get_experiment_by_name("s1").tags["mlflow.experimentKind"] == "custom_model_development"
    parent = client.get_run(sink.parent_run_id)
    assert parent.info.run_name == "s1" and parent.info.status == "FINISHED"
    assert parent.data.params == {"epochs": "3", "asha.grace_period": "1"}
    assert [a.path for a in client.list_artifacts(parent.info.run_id)] == ["study.yaml"]
    children = _children(client, sink)
    assert sorted(children) == ["t1", "t2"]
    t1, t2 = children["t1"], children["t2"]
    assert t1.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert t1.data.params == {"loss": "ls", "loss_params.alpha": "0.1"}
    assert t1.data.tags["smoothstudy.kind"] == "search" and "kind" not in t1.data.tags
    assert t1.info.run_name == "ls alpha=0.1 · t1" and t1.data.tags["smoothstudy.status"] == "completed"
    assert _history(client, t1.info.run_id, "val/acc") == [(1, pytest.approx(0.2)), (2, pytest.approx(0.3))]
    assert _history(client, t1.info.run_id, "test/acc") == [(2, 0.9)]
    assert "epoch" not in t1.data.metrics
    assert sorted(a.path for a in client.list_artifacts(t1.info.run_id)) == [
        "lspp_targets.npy",
        "reliability.png",
    ]
    assert t1.info.status == "FINISHED"
    assert t2.info.status == "FAILED" and t2.data.tags["smoothstudy.reason"].startswith(
        "train/loss became nan"
    )


def test_resumed_sink_continues_the_same_runs(tracking_uri, tmp_path):
    sink = _sink(tracking_uri, "s2", tmp_path)
    sink.trial_started(TrialStart("t1", {"loss": "ce"}))
    sink.epoch("t1", 1, {"val/acc": 0.5})
    first_parent, first_run = sink.parent_run_id, sink.run_id("t1")
    client = MlflowClient(tracking_uri)
    found = find_study_runs(client, client.get_experiment_by_name("s2").experiment_id, "s2")
    assert found == {"parent": first_parent, "trials": {"t1": first_run}}  # by tags: no file, no path

    resumed = _sink(tracking_uri, "s2", tmp_path)  # the driver restarted
    resumed.trial_started(TrialStart("t1", {"loss": "ce"}))
    resumed.epoch("t1", 1, {"val/acc": 0.5})  # replayed from a checkpoint before it: MLflow has it already
    resumed.epoch("t1", 2, {"val/acc": 0.6})
    resumed.trial_ended(TrialEnd("t1", "completed"))
    resumed.close()
    assert resumed.parent_run_id == first_parent and resumed.run_id("t1") == first_run
    client = MlflowClient(tracking_uri)
    assert list(_children(client, resumed)) == ["t1"]
    exp = client.get_experiment_by_name("s2")
    assert len(client.search_runs([exp.experiment_id])) == 2  # parent + one trial
    assert _history(client, first_run, "val/acc") == [(1, 0.5), (2, 0.6)]
    assert not list(tmp_path.glob(".*.tmp"))


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_warns_once_and_never_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    uri = f"http://127.0.0.1:{_closed_port()}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sink = _sink(uri, "s3", tmp_path, retry_after_s=0)  # retries on every call: still one warning
        sink.trial_started(TrialStart("t1", {"loss": "ce"}))
        sink.epoch("t1", 1, {"val/acc": 0.5})
        sink.trial_ended(TrialEnd("t1", "completed"))
        sink.close()
    messages = [str(w.message) for w in caught if "MLflow" in str(w.message)]
    assert len(messages) == 1 and uri in messages[0] and "mlflow-sync" in messages[0]
    assert not sink.available and sink.missed


def test_logging_resumes_after_an_outage(tracking_uri, tmp_path, monkeypatch):
    sink = _sink(tracking_uri, "s4", tmp_path, retry_after_s=0)
    sink.trial_started(TrialStart("t1", {"loss": "ce"}))
    store = sink._store
    real_log = store.log
    monkeypatch.setattr(store, "log", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("down")))
    with pytest.warns(UserWarning, match="failed"):
        sink.epoch("t1", 1, {"val/acc": 0.5})
    monkeypatch.setattr(store, "log", real_log)
    with pytest.warns(UserWarning, match="reachable again"):
        sink.epoch("t1", 2, {"val/acc": 0.6})
    assert sink.available
    assert _history(MlflowClient(tracking_uri), sink.run_id("t1"), "val/acc") == [(2, 0.6)]


def test_sync_from_parquet_back_fills_and_is_idempotent(tracking_uri, tmp_path):
    study_dir = tmp_path / "runs" / "s5"
    parquet = ParquetSink(study_dir / "parquet", "s5")
    mlflow_sink = _sink(tracking_uri, "s5", study_dir)
    for sink in (parquet, mlflow_sink):
        sink.trial_started(TrialStart("t1", {"loss": "ls", "loss_params.alpha": 0.1}))
        sink.epoch("t1", 1, {"val/acc": 0.4})
    # MLflow missed the rest (server down); Parquet has it all, plus a trial MLflow never saw.
    parquet.epoch("t1", 2, {"val/acc": 0.5})
    parquet.trial_ended(TrialEnd("t1", "completed", "", {"val/acc": 0.5, "test/acc": 0.45}))
    parquet.trial_started(TrialStart("t2", {"loss": "ce"}, {"kind": "rerun", "source_trial": "t1"}))
    parquet.epoch("t2", 1, {"val/acc": 0.3})
    parquet.trial_ended(TrialEnd("t2", "stopped", "asha", {"val/acc": 0.3}))
    parquet.close()

    summary = sync_from_parquet(study_dir, tracking_uri)
    assert summary.trials == 2 and summary.runs_created == 1
    again = sync_from_parquet(study_dir, tracking_uri)
    assert again.runs_created == 0 and again.metrics_logged == 0

    client = MlflowClient(tracking_uri)
    children = _children(client, mlflow_sink)
    assert sorted(children) == ["t1", "t2"]
    assert children["t1"].info.run_id == mlflow_sink.run_id("t1")  # the live run, not a new one
    assert _history(client, children["t1"].info.run_id, "val/acc") == [(1, 0.4), (2, 0.5)]
    assert _history(client, children["t1"].info.run_id, "test/acc") == [(2, 0.45)]
    t2 = children["t2"]
    assert t2.data.params == {"loss": "ce"} and t2.data.tags["smoothstudy.kind"] == "rerun"
    assert t2.data.tags["source_trial"] == "t1" and t2.data.tags["smoothstudy.status"] == "stopped"
    assert t2.data.tags["mlflow.parentRunId"] == mlflow_sink.parent_run_id
    assert _history(client, t2.info.run_id, "val/acc") == [(1, 0.3)]


def test_missed_results_mark_the_parent_run_until_sync_back_fills_them(tracking_uri, tmp_path):
    from study.sinks.mlflow_names import MISSED_TAG

    study_dir = tmp_path / "runs" / "s8"
    parquet = ParquetSink(study_dir / "parquet", "s8")
    mlflow_sink = _sink(tracking_uri, "s8", study_dir)
    for sink in (parquet, mlflow_sink):
        sink.trial_started(TrialStart("t1", {"loss": "ce"}))
    parquet.epoch("t1", 1, {"val/acc": 0.4})  # dropped before it reached MLflow
    parquet.close()
    mlflow_sink.missed_results(1)
    client = MlflowClient(tracking_uri)
    assert client.get_run(mlflow_sink.parent_run_id).data.tags[MISSED_TAG] == "1"
    sync_from_parquet(study_dir, tracking_uri)
    assert MISSED_TAG not in client.get_run(mlflow_sink.parent_run_id).data.tags
    assert _history(client, mlflow_sink.run_id("t1"), "val/acc") == [(1, 0.4)]


def test_a_metric_name_mlflow_refuses_is_skipped_without_pausing_logging(tracking_uri, tmp_path):
    sink = _sink(tracking_uri, "s6", tmp_path)
    sink.trial_started(TrialStart("t1", {"loss": "ce"}))
    with pytest.warns(UserWarning, match="'val/cov@5%' is not logged to MLflow"):
        sink.epoch("t1", 1, {"val/acc": 0.5, "val/cov@5%": 0.9, "val/nll": float("nan")})
    assert sink.available
    client = MlflowClient(tracking_uri)
    assert _history(client, sink.run_id("t1"), "val/acc") == [(1, 0.5)]
    assert client.get_metric_history(sink.run_id("t1"), "val/cov@5%") == []


def test_sqlite_artifacts_live_next_to_the_database(tmp_path, monkeypatch):
    """MLflow's default artifact root is ./mlruns of the current directory; a study keeps its own."""
    from study.sinks.mlflow_names import local_artifact_location

    monkeypatch.chdir(tmp_path)
    assert local_artifact_location(f"sqlite:///{tmp_path}/s/mlflow.db") == (tmp_path / "s" / "mlartifacts").as_uri()
    assert local_artifact_location("sqlite:///rel/mlflow.db") == (tmp_path / "rel" / "mlartifacts").as_uri()
    assert local_artifact_location("http://127.0.0.1:5000") is None


def test_live_sink_and_sync_share_one_status_mapping_and_sync_back_fills_reruns_and_files(tracking_uri, tmp_path):
    study_dir = tmp_path / "runs" / "s7"
    parquet, live = ParquetSink(study_dir / "parquet", "s7"), _sink(tracking_uri, "s7", study_dir)
    statuses = ("completed", "stopped", "diverged", "error", "lost")
    for status in statuses:
        for sink in (parquet, live):
            sink.trial_started(TrialStart(f"t-{status}", {"loss": "ce"}))
            sink.trial_ended(TrialEnd(f"t-{status}", status))
    reruns = ParquetSink(study_dir / "parquet" / "reruns", "s7")
    reruns.trial_started(TrialStart("rerun-a", {"loss": "ce"}, {"kind": "rerun", "source_trial": "t-completed"}))
    reruns.epoch("rerun-a", 1, {"val/acc": 0.7})
    reruns.trial_ended(TrialEnd("rerun-a", "completed"))
    files = tmp_path / "artifacts"
    files.mkdir()
    (files / "reliability.png").write_bytes(b"\x89PNG")

    other = f"sqlite:///{tmp_path / 'synced.db'}"  # a store only mlflow-sync writes
    def artifacts_of(trial_id):
        return files if trial_id == "t-completed" else None

    summary = sync_from_parquet(study_dir, other, artifacts_of=artifacts_of)
    assert summary.reruns == 1 and summary.artifacts_logged == 1 and summary.runs_created == 1 + 5 + 1
    live_runs = {n: r.info.status for n, r in _children(MlflowClient(tracking_uri), live).items()}
    synced = _children(MlflowClient(other), live)
    assert {n: r.info.status for n, r in synced.items()} == {**live_runs, "rerun-a": "FINISHED"}
    assert live_runs["t-lost"] == "KILLED" == mlflow_run_status(TrialStatus.LOST)
    assert synced["rerun-a"].data.tags["smoothstudy.kind"] == "rerun"
    assert [a.path for a in MlflowClient(other).list_artifacts(synced["t-completed"].info.run_id)] == ["reliability.png"]
    assert sync_from_parquet(study_dir, other, artifacts_of=artifacts_of).artifacts_logged == 0  # once

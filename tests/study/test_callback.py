"""The Tune callback on the driver, driven with stand-in trials: sinks opened in a thread at setup, and
trials a killed driver left out of Ray's saved state ended as ``lost`` when the resumed study ends."""

from types import SimpleNamespace

import pytest
from mlflow import MlflowClient

from analysis.results import read_epochs, read_trials
from study.callback import LOST_REASON, SinkCallback
from study.sinks.mlflow_sink import MlflowSink
from study.sinks.parquet import ParquetSink


def _callback(tmp_path, uri):
    def make_sinks():
        return [ParquetSink(tmp_path / "parquet", "s"),
                MlflowSink(uri, "s", "s", None, {})]

    return SinkCallback(make_sinks, base={"epochs": 2}, epochs=2, echo=lambda line: None)


def _trial(trial_id):
    return SimpleNamespace(trial_id=trial_id, config={"loss": "ce"}, last_result=None, checkpoint=None)


def test_sinks_open_in_a_thread_at_setup_and_record_results(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    callback = _callback(tmp_path, uri)
    callback.setup()
    assert callback._opening is not None  # opening in the background, not on the first trial's start
    trial = _trial("a")
    callback.on_trial_start(0, [], trial)
    assert callback._opening is None and len(callback.sinks) == 2
    callback.on_trial_result(0, [], trial, {"epoch": 1, "val/acc": 0.5})
    callback.on_trial_result(0, [], trial, {"epoch": 1, "val/acc": 0.9})  # a repeat after a restore: ignored
    epochs = read_epochs(tmp_path)
    assert list(epochs["val/acc"]) == [0.5]


def test_trials_missing_from_the_restored_state_end_as_lost(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = _callback(tmp_path, uri)  # the driver that gets killed: "b" reported, then no snapshot had it
    for trial_id in ("a", "b"):
        first.on_trial_start(0, [], _trial(trial_id))
        first.on_trial_result(0, [], _trial(trial_id), {"epoch": 1, "val/acc": 0.5})

    resumed = _callback(tmp_path, uri)  # `smoothstudy resume`: Ray restored "a" only and added "c"
    a, c = _trial("a"), _trial("c")
    for trial in (a, c):
        resumed.on_trial_start(0, [], trial)
        resumed.on_trial_result(0, [], trial, {"epoch": 2 if trial is a else 1, "val/acc": 0.6})
        resumed.on_trial_result(0, [], trial, {"epoch": 2, "val/acc": 0.7})
        trial.last_result = {"epoch": 2, "val/acc": 0.7}
        resumed.on_trial_complete(0, [], trial)
    resumed.on_experiment_end([a, c])

    trials = read_trials(tmp_path).set_index("trial_id")
    assert trials["status"].to_dict() == {"a": "completed", "b": "lost", "c": "completed"}
    assert trials.loc["b", "reason"] == LOST_REASON
    runs = {r.data.tags["smoothstudy.trial_id"]: r for r in MlflowClient(uri).search_runs(
        [MlflowClient(uri).get_experiment_by_name("s").experiment_id],
        filter_string="tags.`smoothstudy.kind` = 'trial'")}
    assert runs["b"].info.status == "KILLED" and runs["a"].info.status == "FINISHED"


def test_an_error_opening_the_sinks_reaches_the_driver(tmp_path):
    def broken():
        raise RuntimeError("no store")

    callback = SinkCallback(broken, base={}, epochs=1, echo=lambda line: None)
    callback.setup()
    with pytest.raises(RuntimeError, match="no store"):
        callback.on_trial_start(0, [], _trial("a"))


def test_packed_metrics_reach_the_sinks_and_an_ended_trial_is_forgotten(tmp_path):
    from trainables.tune_reporting import pack_result

    callback = _callback(tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}")
    trial = _trial("a")
    callback.on_trial_start(0, [], trial)
    for epoch in (1, 2):
        result = pack_result({"epoch": epoch, "val/acc": 0.5 + epoch / 10, "val/nll": 1.0 / epoch}, ("val/acc",))
        callback.on_trial_result(0, [], trial, result)
    assert set(callback._seen) == {"a"}
    trial.last_result = pack_result({"epoch": 2, "val/acc": 0.7, "test/acc": 0.65}, ("val/acc",))
    callback.on_trial_complete(0, [], trial)
    assert callback._seen == {}  # thousands of ended trials leave nothing behind here
    callback.on_experiment_end([trial])
    epochs, trials = read_epochs(tmp_path), read_trials(tmp_path)
    assert list(epochs["val/nll"]) == [1.0, 0.5]
    assert trials.loc[0, "test/acc"] == 0.65 and trials.loc[0, "status"] == "completed"


def test_a_trial_checkpoint_does_not_wait_for_parquet_a_snapshot_of_the_experiment_does(tmp_path):
    import threading

    from study.sinks.background import BackgroundSinks

    gate = threading.Event()

    class Held(ParquetSink):
        def write_batch(self, events):
            gate.wait()
            super().write_batch(events)

    callback = SinkCallback(lambda: [BackgroundSinks([Held(tmp_path / "parquet", "s")], linger_s=0)],
                            base={}, epochs=2, echo=lambda line: None)
    trial = _trial("a")
    callback.on_trial_start(0, [], trial)
    callback.on_trial_result(0, [], trial, {"epoch": 1, "val/acc": 0.5})
    checkpoint = threading.Thread(target=callback.on_checkpoint, args=(0, [], trial, None))
    checkpoint.start()
    checkpoint.join(5)
    assert not checkpoint.is_alive()  # the driver loop goes on while Parquet is held
    snapshot = threading.Thread(target=callback.get_state)
    snapshot.start()
    snapshot.join(0.5)
    assert snapshot.is_alive()  # Tune's snapshot waits until Parquet holds what was handed over
    gate.set()
    snapshot.join(30)
    assert not snapshot.is_alive() and list(read_epochs(tmp_path)["val/acc"]) == [0.5]

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis.results import read_epochs, read_samples, read_trials, write_samples
from study.sinks.base import TrialEnd, TrialStart
from study.sinks.parquet import ParquetSink

CONFIGS = {
    "t1": {"loss": "ce", "lr": 0.05, "batch_size": 64},
    "t2": {"loss": "ls", "loss_params.alpha": 0.1, "lr": 0.01, "batch_size": 64},
}


def _run_trial(sink, trial_id, accs, nlls, status="completed", final=None, artifacts=None):
    sink.trial_started(TrialStart(trial_id, CONFIGS[trial_id], tags={"kind": "search"}))
    for epoch, (acc, nll) in enumerate(zip(accs, nlls), 1):
        metrics = {"epoch": epoch, "val/acc": acc, "val/nll": nll, "train/loss": 2.0 / epoch}
        # keys a raw Ray result carries must not clobber the row's own columns
        sink.epoch(trial_id, epoch, {**metrics, "trial_id": "other", "done": False, "config": {"lr": 1}})
    sink.trial_ended(
        TrialEnd(trial_id, status, "asha" if status == "stopped" else "", final or {}, artifacts)
    )


@pytest.fixture
def study(tmp_path):
    study_dir = tmp_path / "runs" / "demo"
    sink = ParquetSink(study_dir / "parquet", "demo")
    _run_trial(sink, "t1", [0.5, 0.7, 0.6], [1.0, 0.8, 0.9], final={"val/acc": 0.6, "test/acc": 0.58})
    _run_trial(sink, "t2", [0.4, 0.45], [1.2, 1.1], status="stopped")
    sink.close()
    return study_dir


def test_one_row_per_trial_and_epoch_with_config_and_float_metrics(study):
    epochs = read_epochs(study)
    assert sorted(zip(epochs["trial_id"], epochs["epoch"])) == [
        ("t1", 1),
        ("t1", 2),
        ("t1", 3),
        ("t2", 1),
        ("t2", 2),
    ]
    assert set(epochs["study"]) == {"demo"}
    t2 = epochs[epochs["trial_id"] == "t2"]
    assert list(t2["config/loss"]) == ["ls", "ls"]
    assert list(t2["config/loss_params.alpha"]) == [0.1, 0.1]
    assert epochs[epochs["trial_id"] == "t1"]["config/loss_params.alpha"].isna().all()
    assert epochs["val/acc"].dtype == np.float64 and epochs["train/loss"].dtype == np.float64
    assert "epoch" in epochs and "written_at" in epochs


def test_trials_table_has_status_final_and_best_by_direction(study):
    trials = read_trials(study).set_index("trial_id")
    assert trials.loc["t1", "status"] == "completed" and trials.loc["t2", "status"] == "stopped"
    assert trials.loc["t2", "reason"] == "asha"
    assert trials.loc["t1", "epochs_run"] == 3 and trials.loc["t2", "epochs_run"] == 2
    assert trials.loc["t1", "test/acc"] == 0.58 and trials.loc["t1", "val/acc"] == 0.6
    assert trials.loc["t1", "best/val/acc"] == 0.7  # max over epochs, not the last
    assert trials.loc["t1", "best/val/nll"] == 0.8  # min
    assert "best/train/loss" not in trials  # only val/* get a best
    assert trials.loc["t2", "config/loss_params.alpha"] == 0.1
    assert trials.loc["t1", "tag/kind"] == "search"


def test_replayed_epoch_keeps_the_latest(study):
    sink = ParquetSink(study / "parquet", "demo")
    sink.epoch("t1", 2, {"val/acc": 0.75, "val/nll": 0.7})  # a resumed trial reports epoch 2 again
    sink.close()
    epochs = read_epochs(study)
    t1 = epochs[epochs["trial_id"] == "t1"].set_index("epoch")
    assert len(t1) == 3
    assert t1.loc[2, "val/acc"] == 0.75 and t1.loc[2, "config/loss"] == "ce"
    assert len(list((study / "parquet" / "epochs").glob("part-*.parquet"))) == 2  # merged + the replay
    trials = read_trials(study).set_index("trial_id")
    assert trials.loc["t1", "epochs_run"] == 3 and trials.loc["t1", "best/val/acc"] == 0.75


def test_batches_are_merged_into_one_file_at_close(study):
    files = sorted(p.name for p in (study / "parquet" / "epochs").glob("part-*"))
    assert [f.split("-")[1] for f in files] == ["m"]
    t1 = read_epochs(study).query("trial_id == 't1'")
    assert list(t1["epoch"]) == [1, 2, 3] and list(t1["val/acc"]) == [0.5, 0.7, 0.6]
    assert list(t1["config/lr"]) == [0.05] * 3


def test_a_batch_of_events_is_one_part_file_and_one_trials_write(tmp_path, monkeypatch):
    from study.sinks.base import EpochResult

    sink = ParquetSink(tmp_path / "parquet", "demo")
    writes = []
    monkeypatch.setattr(sink, "_write_trials", lambda real=sink._write_trials: (writes.append(1), real()))
    events = [TrialStart("t1", CONFIGS["t1"]), TrialStart("t2", CONFIGS["t2"])]
    events += [EpochResult(t, e, {"val/acc": 0.1 * e}) for e in (1, 2, 3) for t in ("t1", "t2")]
    events += [TrialEnd("t1", "completed", "", {"test/acc": 0.5})]
    sink.write_batch(events)
    assert len(list((tmp_path / "parquet" / "epochs").glob("part-*.parquet"))) == 1 and writes == [1]
    trials = read_trials(tmp_path).set_index("trial_id")
    assert trials["status"].to_dict() == {"t1": "completed", "t2": "running"}
    assert trials.loc["t1", "epochs_run"] == 3 and trials.loc["t1", "test/acc"] == 0.5
    assert len(read_epochs(tmp_path)) == 6


def test_many_batches_are_merged_as_they_come(tmp_path):
    sink = ParquetSink(tmp_path / "parquet", "demo")
    sink.merge_after = 4
    for epoch in range(1, 10):
        sink.epoch("t1", epoch, {"val/acc": epoch / 10})
    assert len(list((tmp_path / "parquet" / "epochs").glob("part-*.parquet"))) < 4
    assert list(read_epochs(tmp_path)["epoch"]) == list(range(1, 10))


def test_corrupt_part_file_is_named_and_skipped_and_temp_files_ignored(study):
    epochs_dir = study / "parquet" / "epochs"
    (epochs_dir / "part-t9-1-deadbeef.parquet").write_bytes(b"PAR1 not really")
    (epochs_dir / ".part-t9-2-cafe.parquet.1234.tmp").write_bytes(b"half written")
    with pytest.warns(UserWarning, match="part-t9-1-deadbeef.parquet"):
        epochs = read_epochs(study)
    assert len(epochs) == 5 and "t9" not in set(epochs["trial_id"])


def test_writes_leave_no_temporary_files(study):
    leftovers = [p for p in (study / "parquet").rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []


def test_restart_rebuilds_trials_and_keeps_earlier_ones(study):
    sink = ParquetSink(study / "parquet", "demo")  # a resumed study's driver
    assert set(sink.trials) == {"t1", "t2"}
    sink.trial_started(TrialStart("t3", {"loss": "ce", "lr": 0.1, "batch_size": 32}))
    sink.epoch("t3", 1, {"val/acc": 0.3, "val/nll": 1.5})
    sink.close()
    trials = read_trials(study).set_index("trial_id")
    assert sorted(trials.index) == ["t1", "t2", "t3"]
    assert trials.loc["t1", "status"] == "completed" and trials.loc["t1", "best/val/acc"] == 0.7
    assert trials.loc["t1", "test/acc"] == 0.58
    assert trials.loc["t3", "status"] == "running" and trials.loc["t3", "epochs_run"] == 1


def test_restart_recovers_a_trial_known_only_from_epoch_files(study):
    (study / "parquet" / "trials.parquet").unlink()  # the driver died before trials.parquet knew anything
    sink = ParquetSink(study / "parquet", "demo")
    sink.close()
    trials = read_trials(study).set_index("trial_id")
    assert trials.loc["t2", "config/loss"] == "ls" and trials.loc["t2", "epochs_run"] == 2
    assert trials.loc["t1", "best/val/nll"] == 0.8


def test_samples_round_trip_with_compact_types(tmp_path):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 4)).astype(np.float32)
    per_sample = {
        "label": np.array([0, 1, 2, 3, 0, 1]),
        "pred": logits.argmax(1),
        "msp": rng.random(6),
        "score": rng.random(6),
        "logits": logits,
    }
    artifacts = tmp_path / "artifacts"
    write_samples(artifacts / "samples.parquet", per_sample)
    schema = pq.read_schema(artifacts / "samples.parquet")
    assert schema.field("label").type == pa.int16() and schema.field("msp").type == pa.float64()
    assert schema.field("logits").type == pa.list_(pa.float16(), 4)
    sink = ParquetSink(tmp_path / "s" / "parquet", "s")
    sink.trial_started(TrialStart("t1", {"loss": "ce"}))
    sink.trial_ended(TrialEnd("t1", "completed", artifacts_dir=artifacts))
    back = read_samples(tmp_path / "s", "t1")
    np.testing.assert_array_equal(back["label"], per_sample["label"])
    np.testing.assert_array_equal(back["pred"], per_sample["pred"])
    assert back["logits"].shape == (6, 4) and back["logits"].dtype == np.float16
    np.testing.assert_allclose(back["logits"], logits, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(back["msp"], per_sample["msp"])  # scores stay float64: no new ties


def test_labels_beyond_int16_use_int32_and_bad_shapes_are_refused(tmp_path):
    write_samples(tmp_path / "a.parquet", {"label": np.array([0, 40000])})
    assert pq.read_schema(tmp_path / "a.parquet").field("label").type == pa.int32()
    with pytest.raises(ValueError, match="per_sample\\['x'\\]"):
        write_samples(tmp_path / "b.parquet", {"x": np.zeros((2, 2, 2))})
    with pytest.raises(ValueError, match="differ in length"):
        write_samples(tmp_path / "c.parquet", {"label": np.zeros(2), "pred": np.zeros(3)})


def test_readers_refuse_a_directory_without_results(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Parquet results"):
        read_epochs(tmp_path)
    with pytest.raises(FileNotFoundError, match="trial 'x'"):
        (tmp_path / "parquet").mkdir()
        read_samples(tmp_path, "x")


def test_a_live_trials_table_is_rewritten_at_most_every_few_seconds_and_at_close(tmp_path):
    sink = ParquetSink(tmp_path / "parquet", "demo", trials_every_s=60)
    sink.trial_started(TrialStart("t1", CONFIGS["t1"]))  # the first change is written at once
    sink.trial_ended(TrialEnd("t1", "completed"))
    assert read_trials(tmp_path).set_index("trial_id").loc["t1", "status"] == "running"
    sink.close()
    assert read_trials(tmp_path).set_index("trial_id").loc["t1", "status"] == "completed"


def test_trials_file_of_many_trials_in_batches_is_the_one_table_of_their_rows(tmp_path):
    """Ended trials are folded into a table batch by batch; the file must still be what one table of every
    trial's row gives: here config/lr is text, str() of each value ("1" for the int, "1.0" for the float)."""
    from study.sinks.base import EpochResult

    lrs = [1, 0.5, 1.0, "auto"]
    events, expected = [], []
    for i in range(40):
        trial_id, ends = f"t{i:02d}", i % 5 != 4
        events.append(TrialStart(trial_id, {"loss": "ce", "lr": lrs[i % 4]}, tags={"kind": "trial"}, at=1000.0 + i))
        events += [EpochResult(trial_id, e, {"val/acc": i / 100 + e / 10, "val/nll": 1 / e}) for e in (1, 2)]
        if ends:
            events.append(TrialEnd(trial_id, "completed", "", {"test/acc": i / 100}, at=2000.0 + i))
        expected.append({
            "study": "demo", "trial_id": trial_id, "status": "completed" if ends else "running", "reason": "",
            "epochs_run": 2, "started_at": pd.Timestamp(int((1000.0 + i) * 1e9), unit="ns", tz="UTC"),
            "ended_at": pd.Timestamp(int((2000.0 + i) * 1e9), unit="ns", tz="UTC") if ends else None,
            "best/val/acc": i / 100 + 2 / 10, "best/val/nll": 1 / 2, "config/loss": "ce",
            "config/lr": str(lrs[i % 4]), "tag/kind": "trial", "test/acc": i / 100 if ends else None,
        })
    sink = ParquetSink(tmp_path / "parquet", "demo")
    for lo in range(0, len(events), 17):
        sink.write_batch(events[lo:lo + 17])
    sink.close()
    table = pq.read_table(tmp_path / "parquet" / "trials.parquet")
    assert table.schema.names == list(expected[0])
    assert [str(t) for t in table.schema.types] == [
        "string", "string", "string", "string", "int64", "timestamp[ns, tz=UTC]", "timestamp[ns, tz=UTC]",
        "double", "double", "string", "string", "string", "double",
    ]
    assert table.to_pylist() == expected


def test_an_ended_trial_that_starts_again_keeps_its_epochs_and_best_values(study):
    from study.sinks.base import EpochResult

    before = read_trials(study).set_index("trial_id")
    sink = ParquetSink(study / "parquet", "demo")  # a resumed study in which Tune runs t1 again
    sink.write_batch([
        TrialStart("t1", CONFIGS["t1"], tags={"kind": "search"}),
        EpochResult("t1", 3, {"val/acc": 0.65, "val/nll": 0.95}),  # from its checkpoint: epoch 3 again
        EpochResult("t1", 4, {"val/acc": 0.55, "val/nll": 0.7}),
    ])
    assert sink.running_trials() == {"t1"} and sink.trials["t1"].epochs == {1, 2, 3, 4}
    sink.trial_ended(TrialEnd("t1", "completed", "", {"test/acc": 0.6}))
    sink.close()
    trials = read_trials(study)
    assert sorted(trials["trial_id"]) == ["t1", "t2"]
    t1 = trials.set_index("trial_id").loc["t1"]
    assert t1["epochs_run"] == 4 and t1["status"] == "completed" and t1["test/acc"] == 0.6
    assert t1["best/val/acc"] == 0.7 and t1["best/val/nll"] == 0.7  # the earlier max, the new min
    assert t1["started_at"] == before.loc["t1", "started_at"] and t1["config/lr"] == 0.05
    assert sink.epochs_seen() == {"t1": {1, 2, 3, 4}, "t2": {1, 2}}


def test_ended_trials_are_table_rows_not_python_states(tmp_path):
    from study.sinks.base import EpochResult

    sink = ParquetSink(tmp_path / "parquet", "demo")
    events = [TrialStart(f"t{i}", {"loss": "ce", "lr": 0.1 * i}) for i in range(1, 6)]
    events += [EpochResult(f"t{i}", e, {"val/acc": 0.1 * e}) for i in range(1, 6) for e in (1, 2)]
    sink.write_batch(events + [TrialEnd(f"t{i}", "completed") for i in range(1, 5)])
    assert set(sink._trials.live) == {"t5"}  # only the running trial is a state of its own
    assert set(sink.trials) == {"t1", "t2", "t3", "t4", "t5"} and len(sink.trials) == 5
    t1 = sink.trials["t1"]
    assert t1.epochs == {1, 2} and t1.best == {"val/acc": 0.2} and t1.row["status"] == "completed"
    assert t1.row["config/lr"] == 0.1 and "t1" in sink.trials and "t9" not in sink.trials
    assert {t: s.epochs for t, s in sink.trials.items()} == sink.epochs_seen() == {f"t{i}": {1, 2} for i in range(1, 6)}
    sink.close()
    assert set(ParquetSink(tmp_path / "parquet", "demo")._trials.live) == {"t5"}  # restored the same way


def test_ended_trials_cost_the_driver_little_memory(tmp_path):
    """2000 trials, each with ~60 final metrics (30 of them val/*, with a best each): held as dict rows they
    cost ~10 KB a trial (a float object of 24 B and a dict slot per value, the key strings of each trial's
    unpickled result). As table rows, ~90 float64 values and a few strings: under 1 KB. The bound, 3 KB a
    trial, counts Python objects (tracemalloc) and Arrow's buffers (its memory pool)."""
    import gc
    import tracemalloc

    from study.sinks.base import EpochResult

    keys = [f"{split}/m{j}" for split in ("val", "test") for j in range(30)]

    def batch(lo, hi):
        events = []
        for i in range(lo, hi):
            trial_id = f"trial_{i:05d}"
            events.append(TrialStart(trial_id, {"loss": "ls", "lr": 0.01 * (i % 7 + 1), "seed": i}, {"kind": "trial"}))
            # "".join: a new key string per trial, as each unpickled Tune result brings
            events.append(EpochResult(trial_id, 1, {"".join(k): i / 1000 + j for j, k in enumerate(keys)}))
            events.append(TrialEnd(trial_id, "completed", "", {"".join(k): i / 500 + j for j, k in enumerate(keys)}))
        return events

    sink = ParquetSink(tmp_path / "parquet", "mem")
    sink.write_batch(batch(0, 100))  # first use: imports and caches are not the trials' cost
    gc.collect()
    tracemalloc.start()
    try:
        python_before, arrow_before = tracemalloc.get_traced_memory()[0], pa.total_allocated_bytes()
        for lo in range(100, 2100, 100):
            sink.write_batch(batch(lo, lo + 100))
        gc.collect()
        python = tracemalloc.get_traced_memory()[0] - python_before
    finally:
        tracemalloc.stop()
    arrow = pa.total_allocated_bytes() - arrow_before
    assert len(read_trials(tmp_path)) == 2100
    assert (python + arrow) / 2000 < 3000, f"{python / 2000:.0f} B (Python) + {arrow / 2000:.0f} B (Arrow) a trial"

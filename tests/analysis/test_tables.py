import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from analysis.core.tables import (
    COMMON_METADATA,
    EPOCHS,
    SCHEMA_VERSION,
    PartWriter,
    merge_schemas,
    rows_to_table,
    schema_version,
)
from analysis.frames import study_frames
from analysis.results import read_epochs, read_trials
from study.sinks.base import TrialEnd, TrialStart
from study.sinks.parquet import ParquetSink


def _epoch_rows(trial, n, **extra):
    return [{"study": "s", "trial_id": trial, "epoch": e, "config/loss": "ce", "val/acc": 0.1 * e, **extra}
            for e in range(1, n + 1)]


def test_a_new_column_widens_every_older_part_file(tmp_path):
    writer = PartWriter(tmp_path, EPOCHS)
    writer.write(rows_to_table(EPOCHS, _epoch_rows("a", 2)), "part-a.parquet")
    writer.write(rows_to_table(EPOCHS, _epoch_rows("b", 1, **{"config/loss_params.alpha": 0.1})), "part-b.parquet")
    writer.write(rows_to_table(EPOCHS, _epoch_rows("c", 1, **{"config/batch_size": 64})), "part-c.parquet")
    writer.write(rows_to_table(EPOCHS, _epoch_rows("d", 1, **{"config/batch_size": 0.5})), "part-d.parquet")
    schemas = [pq.read_schema(p).remove_metadata() for p in writer.parts()]
    assert all(s.equals(schemas[0]) for s in schemas)  # every part file has the same schema
    common = pq.read_schema(tmp_path / "epochs" / COMMON_METADATA)
    assert common.remove_metadata().equals(schemas[0])
    assert common.field("config/batch_size").type == pa.float64()  # int, then a float: widened
    assert common.names[:4] == ["study", "trial_id", "epoch", "written_at"]
    frame = pd.read_parquet(tmp_path / "epochs")  # a plain dataset read loses nothing
    assert len(frame) == 5 and "config/loss_params.alpha" in frame and "config/batch_size" in frame
    assert frame.set_index("trial_id").loc["b", "config/loss_params.alpha"] == 0.1
    assert all(schema_version(p) == SCHEMA_VERSION for p in writer.parts())


def test_a_restarted_writer_repairs_parts_left_at_an_older_schema(tmp_path):
    writer = PartWriter(tmp_path, EPOCHS)
    writer.write(rows_to_table(EPOCHS, _epoch_rows("a", 1)), "part-a.parquet")
    # a writer that died after writing a wider part and before widening the others
    wide = rows_to_table(EPOCHS, _epoch_rows("b", 1, **{"test/ece": 0.2}))
    pq.write_table(wide, tmp_path / "epochs" / "part-b.parquet")
    PartWriter(tmp_path, EPOCHS)
    assert "test/ece" in pq.read_schema(tmp_path / "epochs" / "part-a.parquet").names
    assert len(ds.dataset(tmp_path / "epochs").to_table()) == 2


def test_incompatible_nested_types_are_refused():
    a = pa.schema([("logits", pa.list_(pa.float16(), 3))])
    b = pa.schema([("logits", pa.list_(pa.float16(), 4))])
    with pytest.raises(pa.ArrowTypeError, match="logits"):
        merge_schemas(EPOCHS, [a, b])


def test_a_resumed_study_with_a_new_hyperparameter_keeps_one_schema(tmp_path):
    sink = ParquetSink(tmp_path / "parquet", "s")
    sink.trial_started(TrialStart("t1", {"loss": "ce", "lr": 0.1}))
    sink.epoch("t1", 1, {"val/acc": 0.5})
    sink.epoch("t1", 2, {"val/acc": 0.6})
    sink.trial_ended(TrialEnd("t1", "completed", final_metrics={"test/acc": 0.55}))
    sink.close()
    sink = ParquetSink(tmp_path / "parquet", "s")  # the extended study: a method with a hyper-parameter
    sink.trial_started(TrialStart("t2", {"loss": "ls", "loss_params": {"alpha": 0.2}, "lr": 0.1}))
    sink.epoch("t2", 1, {"val/acc": 0.4, "val/ece": 0.1})
    sink.close()
    parts = sorted((tmp_path / "parquet" / "epochs").glob("part-*.parquet"))
    schemas = {pq.read_schema(p).remove_metadata() for p in parts}
    assert len(schemas) == 1 and "config/loss_params.alpha" in next(iter(schemas)).names
    assert "val/ece" in next(iter(schemas)).names
    assert pq.read_schema(tmp_path / "parquet" / "trials.parquet").metadata[b"schema_version"] == b"1"
    frames = study_frames(tmp_path)
    assert frames.epochs.equals(read_epochs(tmp_path)) and frames.trials.equals(read_trials(tmp_path))
    assert set(frames.runs["trial_id"]) == {"t1", "t2"} and frames.reruns.empty


def test_the_schema_is_written_at_the_start_from_the_study_configs(tmp_path):
    from search_spaces.space import method_examples
    from search_spaces.study_file import load_study
    from tests.conftest import ROOT
    from trainables.config import flatten, resolve_trial_config

    spec = load_study(ROOT / "studies" / "smoke.yaml")
    configs = [flatten(resolve_trial_config(spec.base_trial_config(), s)) for s in method_examples(spec)]
    ParquetSink(tmp_path / "parquet", "smoke", configs)
    schema = pq.read_schema(tmp_path / "parquet" / "epochs" / COMMON_METADATA)
    assert schema.field("config/loss").type == pa.string()
    assert schema.field("config/loss_params.alpha").type == pa.float64()  # ls's, before any trial ran
    assert schema.field("config/lr").type == pa.float64() and schema.field("config/epochs").type == pa.int64()
    assert not list((tmp_path / "parquet" / "epochs").glob("part-*"))

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis.results import metric_mode, parquet_dir, read_epochs, read_trials


def _part(directory, name, trial_id, epoch, written_at_ns, **metrics):
    table = pa.table(
        {
            "study": ["s"],
            "trial_id": [trial_id],
            "epoch": pa.array([epoch], pa.int64()),
            "written_at": pa.array([written_at_ns], pa.timestamp("ns", tz="UTC")),
            **{k: pa.array([v], pa.float64()) for k, v in metrics.items()},
        }
    )
    pq.write_table(table, directory / f"part-{name}.parquet")


@pytest.fixture
def epochs_dir(tmp_path):
    directory = tmp_path / "parquet" / "epochs"
    directory.mkdir(parents=True)
    return directory


def test_dedupe_keeps_latest_written_not_the_latest_file_name(tmp_path, epochs_dir):
    _part(epochs_dir, "a-1-zzz", "a", 1, 2_000, **{"val/acc": 0.1})  # written first despite the name
    _part(epochs_dir, "a-1-aaa", "a", 1, 3_000, **{"val/acc": 0.2})
    _part(epochs_dir, "a-2-bbb", "a", 2, 1_000, **{"val/acc": 0.3})
    epochs = read_epochs(tmp_path)
    assert list(epochs["epoch"]) == [1, 2]
    assert list(epochs["val/acc"]) == [0.2, 0.3]


def test_files_with_different_metric_columns_are_combined(tmp_path, epochs_dir):
    _part(epochs_dir, "a-1-x", "a", 1, 1, **{"val/acc": 0.5})
    _part(epochs_dir, "b-1-x", "b", 1, 2, **{"val/acc": 0.6, "val/ece": 0.05})
    epochs = read_epochs(tmp_path).set_index("trial_id")
    assert pd.isna(epochs.loc["a", "val/ece"]) and epochs.loc["b", "val/ece"] == 0.05


def test_empty_study_reads_as_empty_frames(tmp_path, epochs_dir):
    assert read_epochs(tmp_path).empty and "trial_id" in read_epochs(tmp_path)
    assert read_trials(tmp_path).empty and "status" in read_trials(tmp_path)


def test_study_dir_or_parquet_dir(tmp_path):
    assert parquet_dir(tmp_path / "runs" / "s") == tmp_path / "runs" / "s" / "parquet"
    assert parquet_dir(tmp_path / "runs" / "s" / "parquet") == tmp_path / "runs" / "s" / "parquet"


@pytest.mark.parametrize(
    "key, mode",
    [
        ("val/acc", "max"),
        ("test/auroc", "max"),
        ("val/cov_at_5", "max"),
        ("val/nll", "min"),
        ("val/ece", "min"),
        ("test/aurc_lognorm", "min"),
        ("train/loss", "min"),
    ],
)
def test_metric_direction(key, mode):
    assert metric_mode(key) == mode

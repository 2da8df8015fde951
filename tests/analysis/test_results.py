import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis.core.catalogue import metric_mode
from analysis.results import parquet_dir, read_epochs, read_trials


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


def _saturated(n, seed):
    """Outputs of an overconfident model: margins over ~19 put an MSP within float32's rounding of 1."""
    import numpy as np
    import torch

    from analysis.metrics.evaluation import Outputs

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    wrong = rng.random(n) < 0.2
    pred = np.where(wrong, (y + 1) % 10, y)
    z = rng.normal(size=(n, 10))
    z[np.arange(n), pred] += np.where(wrong, rng.uniform(5, 22, n), rng.uniform(10, 30, n))
    return Outputs(torch.tensor(z, dtype=torch.float32), torch.tensor(y))


def test_metrics_recomputed_from_the_samples_file_equal_the_reported_ones(tmp_path):
    import numpy as np

    from analysis.leaderboard import SAMPLE_METRICS, sample_columns
    from analysis.metrics.evaluation import final_metrics, per_sample_outputs
    from analysis.results import table_to_arrays, write_samples

    val, test = _saturated(500, 1), _saturated(1000, 2)
    metrics = final_metrics(val, test)
    samples = per_sample_outputs(test, metrics["test/lognorm_p"])
    lossy = sample_columns({**samples, "msp": samples["msp"].astype(np.float32)})
    assert SAMPLE_METRICS["test/aurc"](lossy) != metrics["test/aurc"]  # what float32 storage would report
    write_samples(tmp_path / "samples.parquet", samples)
    back = table_to_arrays(pq.read_table(tmp_path / "samples.parquet"))
    assert back["msp"].dtype == np.float64 and back["lognorm"].dtype == np.float64
    assert back["logits"].dtype == np.float16
    columns = sample_columns(back)
    for key in ("test/aurc", "test/aurc_lognorm", "test/cov_at_5", "test/auroc", "test/ece", "test/acc"):
        assert SAMPLE_METRICS[key](columns) == metrics[key], key


def test_best_trials_breaks_ties_by_grid_order_not_table_order():
    import pandas as pd

    from analysis.leaderboard import best_trials

    trials = pd.DataFrame({"trial_id": ["t3", "t2", "t1", "c"], "status": ["completed"] * 4,
                           "config/loss": ["lr", "lr", "lr", "ce"],
                           "config/loss_params.alpha": [0.3, 0.2, 0.1, None],
                           "val/acc": [0.9, 0.9, 0.8, 0.85]})
    best = best_trials(trials, "val/acc", "max")
    assert list(best["trial_id"]) == ["t2", "c"]  # 0.2 before 0.3 at the same accuracy
    assert list(best_trials(trials, "val/acc", "min")["trial_id"]) == ["t1", "c"]

"""A finished trial's files: per-sample outputs, plots, learned target matrices (LS++ C, LLS Q) and the
class-centre distance matrix, each as a heatmap PNG plus the raw array, logged to the trial's MLflow run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from analysis.core.tables import SAMPLES_FILE
from analysis.metrics.calibration import ece
from analysis.metrics.evaluation import Outputs, final_metrics, per_sample_outputs, risk_coverage_curves
from analysis.metrics.selective import risk_coverage_curve
from analysis.plots import trial_plots
from analysis.results import table_to_arrays
from study.sinks.base import TrialEnd, TrialStart
from study.sinks.mlflow_sink import MlflowSink
from trainables.artifacts import write_trial_artifacts
from trainables.config import TrialConfig
from trainables.loop import run_local
from trainables.trainer import FinalEvaluation

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def lspp_final():
    cfg = TrialConfig(dataset="digits", model="mlp", loss="lspp", loss_params={"alpha": 0.2}, epochs=2,
                      batch_size=64, val_fraction=0.2, probe_max_train=300, device="cpu")
    return run_local(cfg)[1]


def test_learned_matrix_files(lspp_final, tmp_path):
    out = write_trial_artifacts(lspp_final, tmp_path / "artifacts")
    matrix = np.load(out / "lspp_targets.npy")
    assert matrix.shape == (10, 10)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(np.diag(matrix), 0.0)
    assert not np.allclose(matrix[~np.eye(10, dtype=bool)], 1 / 9), "C did not learn anything in 2 epochs"
    for name in ("lspp_targets.png", "reliability.png", "risk_coverage.png"):
        assert (out / name).read_bytes()[:8] == PNG, name
    import pyarrow.parquet as pq

    samples = table_to_arrays(pq.read_table(out / SAMPLES_FILE))
    assert samples["logits"].shape == (297, 10) and samples["logits"].dtype == np.float16
    assert len(samples["label"]) == 297


def test_matrices_reach_mlflow(lspp_final, tmp_path):
    out = write_trial_artifacts(lspp_final, tmp_path / "artifacts")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sink = MlflowSink(uri, "t", "t", None, {})
    sink.trial_started(TrialStart("trial1", {"loss": "lspp"}))
    sink.trial_ended(TrialEnd("trial1", "completed", "", lspp_final.metrics, out))
    sink.close()
    client = MlflowClient(uri)
    run_id = sink.run_id("trial1")
    names = {a.path for a in client.list_artifacts(run_id)}
    assert {"lspp_targets.npy", "lspp_targets.png", "centre_distances.npy", "centre_distances.png"} <= names
    assert SAMPLES_FILE not in names


def test_centre_distance_matrix_files(lspp_final, tmp_path):
    out = write_trial_artifacts(lspp_final, tmp_path / "artifacts")
    matrix = np.load(out / "centre_distances.npy")
    np.testing.assert_array_equal(matrix, lspp_final.matrices["centre_distances"])
    assert matrix.shape == (10, 10) and matrix.dtype == np.float64
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)  # rows L1-normalised
    np.testing.assert_array_equal(np.diag(matrix), 0.0)
    assert (out / "centre_distances.png").read_bytes()[:8] == PNG


@pytest.fixture
def plot_titles(monkeypatch):
    """Titles of the figures the trial plots save, by file name."""
    titles = {}
    save = trial_plots.save_figure

    def recording_save(fig, path, **kwargs):
        titles[Path(path).name] = fig.axes[0].get_title()
        return save(fig, path, **kwargs)

    monkeypatch.setattr(trial_plots, "save_figure", recording_save)
    return titles


def test_reliability_title_shows_the_reported_ece(lspp_final, tmp_path, plot_titles):
    write_trial_artifacts(lspp_final, tmp_path / "artifacts")
    assert plot_titles["reliability.png"] == f"reliability (15 bins), ECE = {lspp_final.metrics['test/ece']:.4f}"


def test_plots_use_float64_scores_not_the_stored_float16_logits(tmp_path, plot_titles):
    """Logits near 600 are stored by float16 in steps of 0.5, which changes their softmax and so the ECE."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 10, 3000)
    z = 600 + rng.normal(size=(3000, 10))
    z[np.arange(3000), y] += rng.uniform(0, 3, 3000)
    test = Outputs(torch.tensor(z, dtype=torch.float32), torch.tensor(y))
    metrics = final_metrics(test, test)
    samples = per_sample_outputs(test, None)
    from_float16 = Outputs(torch.tensor(samples["logits"].astype(np.float32)), torch.tensor(y))
    rounded = per_sample_outputs(from_float16, None)
    assert f"{ece(rounded['msp'], rounded['pred'] == y):.4f}" != f"{metrics['test/ece']:.4f}"
    final = FinalEvaluation(metrics, samples, curves=risk_coverage_curves(test, None))
    write_trial_artifacts(final, tmp_path / "artifacts")
    assert plot_titles["reliability.png"].endswith(f"ECE = {metrics['test/ece']:.4f}")
    coverage, risk = final.curves["MSP (raw)"]
    expected = risk_coverage_curve(samples["msp"], samples["pred"] == y)
    np.testing.assert_array_equal(coverage, expected.coverage)
    np.testing.assert_array_equal(risk, expected.risk)

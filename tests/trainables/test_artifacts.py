"""A finished trial's files: per-sample outputs, plots, and learned target matrices (LS++ C, LLS Q) as a
heatmap PNG plus the raw array, logged to the trial's MLflow run."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow import MlflowClient

from analysis.results import table_to_arrays
from study.sinks.base import TrialEnd, TrialStart
from study.sinks.mlflow import MlflowSink
from trainables.artifacts import SAMPLES_FILE, write_trial_artifacts
from trainables.config import TrialConfig
from trainables.loop import run_local

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
    sink = MlflowSink(uri, "t", "t", None, {}, tmp_path / "runs.json")
    sink.trial_started(TrialStart("trial1", {"loss": "lspp"}))
    sink.trial_ended(TrialEnd("trial1", "completed", "", lspp_final.metrics, out))
    sink.close()
    client = MlflowClient(uri)
    run_id = sink.run_id("trial1")
    names = {a.path for a in client.list_artifacts(run_id)}
    assert {"lspp_targets.npy", "lspp_targets.png"} <= names
    assert SAMPLES_FILE not in names

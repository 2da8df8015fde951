"""The report's learned-matrix figure: LS++ C / LLS Q next to the best model's confusion matrix, with their
off-diagonal correlation, read from the study's matrices table."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from analysis.core.layout import RAY_DIR, StudyDir
from analysis.core.tables import MATRIX_SUFFIX, SAMPLES_FILE, matrix_file, target_matrix
from analysis.plots.report_plots import confusion_matrix, off_diagonal_correlation
from analysis.results import read_matrices, write_samples
from analysis.study_report import ReportInputs, write_study_report
from study.sinks.base import TrialEnd, TrialStart
from study.sinks.parquet import ParquetSink
from tests.conftest import assert_png

K = 4


def _samples() -> dict[str, np.ndarray]:
    label = np.arange(120) % K
    pred = label.copy()
    pred[:12] = (label[:12] + 1) % K  # class c mistaken for c + 1, three times per class
    pred[12:14] = (label[12:14] + 2) % K  # and twice c + 2, for classes 0 and 1 only
    logits = np.full((120, K), -1.0)
    logits[np.arange(120), pred] = 2.0
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return {"label": label, "pred": pred, "msp": p.max(axis=1), "lognorm": p.max(axis=1), "logits": logits}


def _artifacts(folder, matrices: dict) -> None:
    """A finished trial's artifacts folder as the trial leaves it: per-sample outputs, a ``.npy`` per matrix."""
    write_samples(folder / SAMPLES_FILE, _samples())
    for name, matrix in matrices.items():
        np.save(folder / f"{name}{MATRIX_SUFFIX}", matrix)


@pytest.fixture
def study(tmp_path):
    """CE, LS++ and LLS trials whose artifacts reach the Parquet sink; LLS left a corrupt matrix file."""
    root = tmp_path / "mat"
    sink = ParquetSink(root / "parquet", "mat")
    confusion = confusion_matrix(_samples()["label"], _samples()["pred"], K)
    for trial, method in (("ce_a", "ce"), ("lspp_a", "lspp"), ("lls_a", "lls")):
        config = {"loss": method, "seed": 0, **({"loss_params.alpha": 0.1} if method != "ce" else {})}
        sink.trial_started(TrialStart(trial, config))
        sink.epoch(trial, 1, {"val/acc": 0.9, "val/aurc": 0.01, "val/ece": 0.02})
        folder = tmp_path / "artifacts" / trial
        folder.mkdir(parents=True)
        # planted: perfectly correlated with the confusion matrix off the diagonal
        _artifacts(folder, {} if method == "ce" else {target_matrix(method): confusion * 0.5 + 0.01})
        sink.trial_ended(TrialEnd(trial, "completed", "", {"val/acc": 0.9, "val/aurc": 0.01, "val/ece": 0.02,
                                                             "test/acc": 0.88}, folder))
    sink.close()
    matrix_file(root / "parquet", "lls_a").write_bytes(b"not parquet")
    return root


def test_matrix_figures_next_to_the_confusion_matrix(study, tmp_path):
    with pytest.warns(UserWarning, match="no learned matrix for lls"):  # costs its figure, not the report
        files = write_study_report(ReportInputs(study, [("val/acc", "max")]), tmp_path / "o")
    names = {p.name for p in files.images}
    assert "matrix_lspp.png" in names and "matrix_lls.png" not in names and "matrix_ce.png" not in names
    assert_png(tmp_path / "o" / "img" / "matrix_lspp.png")
    assert "off-diagonal correlation r = 1.000" in files.markdown.read_text()


def test_a_study_without_its_mlflow_store_and_ray_folder_still_reports_its_matrices(tmp_path):
    """LS++ and LLS trained for real; their checkpoints (the Ray folder) and the MLflow store are gone: the
    report draws C and Q from the matrices table, and the table holds them as the trials learned them."""
    from study.report import make_report
    from trainables.artifacts import write_trial_artifacts
    from trainables.config import TrialConfig
    from trainables.loop import run_local

    study = StudyDir(tmp_path / "runs" / "mat")
    study.root.mkdir(parents=True)
    study.study_file.write_text("name: mat\ndata: {dataset: digits}\ntraining: {epochs: 2}\n"
                                "methods: {lspp: {}, lls: {}}\n")
    sink = ParquetSink(study.parquet, "mat")
    learned = {}
    for method in ("lspp", "lls"):
        cfg = TrialConfig(dataset="digits", model="mlp", loss=method, epochs=2, batch_size=64, val_fraction=0.2,
                          representation=False, probe=False, device="cpu")
        history, final = run_local(cfg)
        trial = f"{method}_trial"
        artifacts = write_trial_artifacts(final, study.root / RAY_DIR / trial)  # as in its checkpoint
        learned[trial] = final.matrices[target_matrix(method)]
        sink.trial_started(TrialStart(trial, {"loss": method, "seed": 0}))
        for metrics in history:
            sink.epoch(trial, int(metrics["epoch"]), metrics)
        sink.trial_ended(TrialEnd(trial, "completed", "", final.metrics, artifacts))
    sink.close()
    shutil.rmtree(study.root / RAY_DIR)
    assert not study.mlflow_db.exists() and not (study.root / RAY_DIR).exists()

    with pytest.warns(UserWarning, match="no MLflow parent run"):
        make_report(study, tmp_path / "report", echo=None)
    md = (tmp_path / "report" / "report.md").read_text()
    for method in ("lspp", "lls"):
        assert f"img/matrix_{method}.png" in md
        assert_png(tmp_path / "report" / "img" / f"matrix_{method}.png")
    for trial, matrix in learned.items():
        stored = read_matrices(study.root, trial)
        assert stored[target_matrix(trial.split("_")[0])].shape == (10, 10)
        np.testing.assert_array_equal(stored[target_matrix(trial.split("_")[0])], matrix.astype(float))
    epochs = pq.read_table(matrix_file(study.parquet, "lls_trial")).column("epoch").to_pylist()
    assert set(epochs) == {2}  # the last epoch's


def test_off_diagonal_correlation_ignores_the_diagonal():
    a = np.array([[9.0, 1.0, 2.0], [3.0, -9.0, 4.0], [5.0, 6.0, 0.0]])
    b = -2 * a + np.diag([100.0, 7.0, -3.0])
    assert off_diagonal_correlation(a, b) == pytest.approx(-1.0)
    assert math.isnan(off_diagonal_correlation(a, np.eye(3)))  # constant off the diagonal
    with pytest.raises(ValueError, match="square"):
        off_diagonal_correlation(a, a[:2])


def test_confusion_matrix_rows_are_true_classes():
    m = confusion_matrix(np.array([0, 0, 0, 1]), np.array([0, 1, 1, 1]), 3)
    assert m.tolist() == [[1 / 3, 2 / 3, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]

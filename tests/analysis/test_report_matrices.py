"""The report's learned-matrix figure: LS++ C / LLS Q next to the best model's confusion matrix, with their
off-diagonal correlation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.plots.report_plots import confusion_matrix, off_diagonal_correlation
from analysis.results import samples_path, write_samples
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


@pytest.fixture
def study(tmp_path):
    root = tmp_path / "mat"
    sink = ParquetSink(root / "parquet", "mat")
    for trial, method in (("ce_a", "ce"), ("lspp_a", "lspp"), ("lls_a", "lls")):
        config = {"loss": method, "seed": 0, **({"loss_params.alpha": 0.1} if method != "ce" else {})}
        sink.trial_started(TrialStart(trial, config))
        sink.epoch(trial, 1, {"val/acc": 0.9, "val/aurc": 0.01, "val/ece": 0.02})
        sink.trial_ended(TrialEnd(trial, "completed", "", {"val/acc": 0.9, "val/aurc": 0.01, "val/ece": 0.02,
                                                             "test/acc": 0.88}))
        write_samples(samples_path(root, trial), _samples())
    sink.close()
    return root


def test_matrix_figures_next_to_the_confusion_matrix(study, tmp_path):
    s = _samples()
    confusion = confusion_matrix(s["label"], s["pred"], K)
    asked = []

    def load(trial_id: str, method: str):
        asked.append((trial_id, method))
        if method == "lls":
            raise FileNotFoundError("no artifact")  # costs its figure, not the report
        return confusion * 0.5 + 0.01  # planted: perfectly correlated off the diagonal

    with pytest.warns(UserWarning, match="no learned matrix for lls"):
        files = write_study_report(ReportInputs(study, [("val/acc", "max")], load_matrix=load), tmp_path / "o")
    assert sorted(asked) == [("lls_a", "lls"), ("lspp_a", "lspp")]  # CE has no learned matrix
    names = {p.name for p in files.images}
    assert "matrix_lspp.png" in names and "matrix_lls.png" not in names
    assert_png(tmp_path / "o" / "img" / "matrix_lspp.png")
    assert "off-diagonal correlation r = 1.000" in files.markdown.read_text()


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

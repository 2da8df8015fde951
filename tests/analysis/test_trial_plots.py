import numpy as np
import pytest
import torch

from analysis.plots.trial_plots import plot_reliability, plot_risk_coverage

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plot_reliability_writes_png(tmp_path):
    rng = np.random.default_rng(0)
    logits = torch.tensor(rng.normal(size=(200, 4)) * 3)
    labels = torch.tensor(rng.integers(0, 4, 200))
    path = plot_reliability(logits, labels, tmp_path / "sub" / "reliability.png", bins=10)
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_plot_risk_coverage_writes_png(tmp_path):
    cov = np.arange(1, 11) / 10
    curves = {"MSP (raw)": (cov, np.linspace(0, 0.3, 10)), "lognorm": (cov, np.linspace(0, 0.2, 10))}
    path = plot_risk_coverage(curves, tmp_path / "rc.png")
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_plot_bad_input(tmp_path):
    with pytest.raises(ValueError, match="curves"):
        plot_risk_coverage({}, tmp_path / "rc.png")
    with pytest.raises(ValueError, match="curves\\['a'\\] risk"):
        plot_risk_coverage({"a": ([0.5, 1.0], [0.1])}, tmp_path / "rc.png")
    with pytest.raises(ValueError, match="labels"):
        plot_reliability([[0.0, 1.0]], [3], tmp_path / "r.png")

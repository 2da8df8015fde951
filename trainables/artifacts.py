"""Files a finished trial leaves for the sinks: per-sample test outputs, plots, learned target matrices and
the class-centre distance matrix (each matrix as ``<name>.npy`` plus a ``<name>.png`` heatmap)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis.core.tables import MATRIX_SUFFIX, SAMPLES_FILE
from trainables.trainer import FinalEvaluation

# Heatmap (title, (x, y) axis labels) of matrices that are not learned soft-label targets.
MATRIX_PLOTS = {
    "centre_distances": ("class-centre cosine distances, rows L1-normalised", ("class", "class")),
}


def write_trial_artifacts(final: FinalEvaluation, directory: Path) -> Path:
    from analysis.plots.matrices import TARGET_AXES, save_matrix_heatmap
    from analysis.results import write_samples

    directory.mkdir(parents=True, exist_ok=True)
    write_samples(directory / SAMPLES_FILE, final.per_sample)
    for name, matrix in final.matrices.items():
        np.save(directory / f"{name}{MATRIX_SUFFIX}", matrix)
        title, axes = MATRIX_PLOTS.get(name, (name, TARGET_AXES))
        save_matrix_heatmap(matrix, list(final.class_names), directory / f"{name}.png", title, axes)
    _write_trial_plots(final, directory)
    return directory


def _write_trial_plots(final: FinalEvaluation, directory: Path) -> None:
    from analysis.plots.trial_plots import plot_confidence_reliability, plot_risk_coverage

    # The float64 MSPs test/ece was computed from, not the float16 logits kept for storage, so the ECE in
    # the title is test/ece. The curves are float64 too (computed from the same scores as test/aurc).
    samples = final.per_sample
    correct = samples["pred"] == samples["label"]
    plot_confidence_reliability(samples["msp"], correct, directory / "reliability.png")
    plot_risk_coverage(final.curves, directory / "risk_coverage.png")

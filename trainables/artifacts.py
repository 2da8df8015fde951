"""Files a finished trial leaves for the sinks: per-sample test outputs, plots and learned matrices."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainables.loop import FinalEvaluation

SAMPLES_FILE = "samples.parquet"  # the name study.sinks.parquet looks for


def write_trial_artifacts(final: FinalEvaluation, directory: Path) -> Path:
    from analysis.plots.matrices import save_matrix_heatmap
    from analysis.results import write_samples

    directory.mkdir(parents=True, exist_ok=True)
    write_samples(directory / SAMPLES_FILE, final.per_sample)
    for name, matrix in final.matrices.items():
        np.save(directory / f"{name}.npy", matrix)
        save_matrix_heatmap(matrix, list(final.class_names), directory / f"{name}.png", title=name)
    _write_trial_plots(final, directory)
    return directory


def _write_trial_plots(final: FinalEvaluation, directory: Path) -> None:
    from analysis.plots.trial_plots import plot_reliability, plot_risk_coverage

    samples = final.per_sample
    plot_reliability(samples["logits"].astype(np.float32), samples["label"], directory / "reliability.png")
    plot_risk_coverage(final.curves, directory / "risk_coverage.png")

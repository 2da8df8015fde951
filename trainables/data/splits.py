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


def make_splits(raw: RawData, val_fraction: float, seed: int, subset: int | None = None) -> Splits:
    """Shuffle the training set with ``seed``, keep ``subset`` images of it (all when None), then hold out
    ``val_fraction`` of those for validation. The same (seed, subset, val_fraction) always gives the same
    split, independent of the trial's training seed when the study fixes ``split_seed``."""
    is_number = isinstance(val_fraction, (int, float)) and not isinstance(val_fraction, bool)
    if not is_number or not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction!r} is not allowed; allowed: a number in (0, 1)")
    n_all = len(raw.train)
    is_int = isinstance(subset, int) and not isinstance(subset, bool)
    if subset is not None and (not is_int or not 1 < subset <= n_all):
        raise ValueError(f"subset={subset!r} is not allowed; allowed: an integer in [2, {n_all}]")
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n_all, generator=gen)[: subset or n_all]
    n_val = max(1, round(len(order) * val_fraction))
    if n_val >= len(order):
        raise ValueError(f"val_fraction={val_fraction!r} leaves no training images out of {len(order)}")
    return Splits(train=raw.train.subset(order[n_val:]), val=raw.train.subset(order[:n_val]), test=raw.test)

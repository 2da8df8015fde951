"""Batches straight from device tensors: a permutation of indices, augmentation and normalisation on the
device, no per-item DataLoader (airbench-style)."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from trainables.data.base import TensorDataset


class Normalizer:
    """uint8 images → float, normalised per channel; done per batch so the dataset stays uint8 on device."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device) -> None:
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255.0
        self.inv_std = 1.0 / (torch.tensor(std, device=device).view(1, -1, 1, 1) * 255.0)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float() - self.mean) * self.inv_std


def augment(images: torch.Tensor, crop_padding: int, hflip: bool, gen: torch.Generator) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip, on uint8 (N, C, H, W) tensors."""
    n, _, h, w = images.shape
    device = images.device
    if crop_padding > 0:
        p = crop_padding
        padded = torch.nn.functional.pad(images, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (n,), generator=gen, device=device)
        dx = torch.randint(0, 2 * p + 1, (n,), generator=gen, device=device)
        rows = (dy[:, None] + torch.arange(h, device=device)[None, :])[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=device)[None, :])[:, None, None, :]
        batch = torch.arange(n, device=device)[:, None, None, None]
        chans = torch.arange(images.shape[1], device=device)[None, :, None, None]
        images = padded[batch, chans, rows, cols]
    if hflip:
        flip = torch.rand(n, generator=gen, device=device) < 0.5
        images = torch.where(flip[:, None, None, None], images.flip(3), images)
    return images


def train_batches(
    data: TensorDataset, batch_size: int, gen: torch.Generator, *, crop_padding: int = 0, hflip: bool = False,
    drop_last: bool = True,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield (uint8 images, labels, indices) of one shuffled epoch. ``gen`` lives on the data's device."""
    n = len(data)
    order = torch.randperm(n, generator=gen, device=data.images.device)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        images = data.images[idx]
        if crop_padding or hflip:
            images = augment(images, crop_padding, hflip, gen)
        yield images, data.labels[idx], idx


def eval_batches(data: TensorDataset, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for start in range(0, len(data), batch_size):
        yield data.images[start : start + batch_size], data.labels[start : start + batch_size]

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

    @classmethod
    def pixel_mean(cls, images: torch.Tensor) -> Normalizer:
        """x / 255 minus the per-pixel mean of ``images`` (uint8 (N, C, H, W)), with no division by a spread."""
        out = cls.__new__(cls)
        out.mean = images.double().mean(dim=0, keepdim=True).float()
        out.inv_std = torch.tensor(1.0 / 255.0, device=images.device)
        return out

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float() - self.mean) * self.inv_std


def augment(images: torch.Tensor, crop_padding: int, hflip: bool, gen: torch.Generator) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip, on uint8 (N, C, H, W) tensors."""
    if not crop_padding and not hflip:
        return images
    index = torch.arange(len(images), device=images.device)
    return shifted_flipped(pad(images, crop_padding), index, crop_padding, hflip, gen)


def pad(images: torch.Tensor, p: int) -> torch.Tensor:
    return torch.nn.functional.pad(images, (p, p, p, p)) if p else images


def shifted_flipped(padded: torch.Tensor, index: torch.Tensor, p: int, hflip: bool,
                    gen: torch.Generator) -> torch.Tensor:
    """Images ``index`` of ``padded`` (N, C, H + 2p, W + 2p), each shifted by up to ``p`` pixels along each axis
    and, with ``hflip``, mirrored with probability 1/2: one gather, no per-batch copies for pad or flip.
    Draws dy, dx, then the flips, from ``gen``."""
    n, (c, hp, wp) = len(index), padded.shape[1:]
    h, w, device = hp - 2 * p, wp - 2 * p, padded.device
    rows = torch.arange(h, device=device).expand(n, h)
    cols = torch.arange(w, device=device).expand(n, w)
    if p:
        rows = rows + torch.randint(0, 2 * p + 1, (n, 1), generator=gen, device=device)
        shift = torch.randint(0, 2 * p + 1, (n, 1), generator=gen, device=device)
    if hflip:
        flip = torch.rand(n, 1, generator=gen, device=device) < 0.5
        cols = torch.where(flip, cols.flip(1), cols)
    if p:
        cols = cols + shift
    # pixel offsets within each image and one gather: advanced indexing with four index tensors, or take(), is
    # several times slower on CPU
    offsets = (rows * wp)[:, None, :, None] + cols[:, None, None, :]
    if c > 1:
        offsets = offsets + (torch.arange(c, device=device) * (hp * wp))[None, :, None, None]
    return padded[index].view(n, -1).gather(1, offsets.view(n, -1)).view(n, c, h, w)


def train_batches(
    data: TensorDataset, batch_size: int, gen: torch.Generator, *, crop_padding: int = 0, hflip: bool = False,
    drop_last: bool = True,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield (uint8 images, labels, indices) of one shuffled epoch. ``gen`` lives on the data's device."""
    n = len(data)
    order = torch.randperm(n, generator=gen, device=data.images.device)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    augmenting = crop_padding or hflip
    source = pad(data.images, crop_padding) if augmenting else data.images  # padded once per epoch
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        if augmenting:
            images = shifted_flipped(source, idx, crop_padding, hflip, gen)
        else:
            images = source[idx]
        yield images, data.labels[idx], idx


def eval_batches(data: TensorDataset, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for start in range(0, len(data), batch_size):
        yield data.images[start : start + batch_size], data.labels[start : start + batch_size]

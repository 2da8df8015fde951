"""Readers for the IDX format (MNIST, Fashion-MNIST), plain or gzip-compressed."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes for {ndim} dimensions)")
    dims = np.frombuffer(data, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    dtype = np.dtype(_DTYPES[data[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) - offset != expected:
        raise ValueError(f"{path}: header says {expected} bytes of data, file has {len(data) - offset}")
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(tuple(dims))


def find_idx(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def load_idx_images_labels(directory: Path, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(_require(directory, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_require(directory, f"{prefix}-labels-idx1-ubyte"))
    if images.dtype != np.uint8 or images.ndim != 3 or labels.ndim != 1:
        raise ValueError(
            f"{directory}: {prefix} images must be uint8 (N, H, W) and labels (N,); "
            f"got {images.dtype} {images.shape} and {labels.shape}"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{directory}: {prefix} has {images.shape[0]} images but {labels.shape[0]} labels")
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def _require(directory: Path, stem: str) -> Path:
    path = find_idx(directory, stem)
    if path is None:
        raise FileNotFoundError(f"{directory / stem}[.gz]")
    return path

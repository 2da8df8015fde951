"""Dataset registry and the in-memory tensor form every dataset is loaded into."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from analysis.core.registry import Registry


@dataclass
class TensorDataset:
    """A whole split as tensors: images uint8 (N, C, H, W), labels int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W); got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels must have shape ({self.images.shape[0]},); got {tuple(self.labels.shape)}")
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, index: torch.Tensor) -> TensorDataset:
        return TensorDataset(self.images[index], self.labels[index])

    def to(self, device: torch.device | str) -> TensorDataset:
        return TensorDataset(self.images.to(device), self.labels.to(device))


@dataclass
class RawData:
    train: TensorDataset
    test: TensorDataset


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    load: Callable[[Path | None, bool], RawData]  # (data_dir or None for the default, download) -> RawData
    num_classes: int
    in_chans: int
    image_size: int
    class_names: tuple[str, ...]
    mean: tuple[float, ...]  # per channel, on the [0, 1] scale
    std: tuple[float, ...]
    hflip: bool = False  # horizontal flips preserve the label (not for digits or clothes with text)
    crop_padding: int = 0  # random-crop padding in pixels; 0 disables it
    train_size: int | None = None  # images in its training set: what data.subset may keep at most
    default_dir: str | None = None
    env_var: str | None = None  # environment variable overriding the default directory
    reference: str = ""
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def reads_directory(self) -> bool:
        """False for a dataset bundled with a package (digits, mnist5k): it ignores ``data_dir``."""
        return self.default_dir is not None or self.env_var is not None

    def resolve_dir(self, data_dir: str | Path | None) -> Path | None:
        if data_dir:
            return Path(data_dir).expanduser()
        if self.env_var and os.environ.get(self.env_var):
            return Path(os.environ[self.env_var]).expanduser()
        return Path(self.default_dir) if self.default_dir else None


DATASETS: Registry[DatasetInfo] = Registry("dataset")


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    return DATASETS.register(info)


def list_datasets() -> list[str]:
    return DATASETS.names()


def get_dataset_info(name: str) -> DatasetInfo:
    return DATASETS.get(name)


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = False) -> RawData:
    """The dataset's splits, with every label checked to lie in [0, num_classes) once here, so the losses
    need not check targets on a GPU (which would sync the device every step)."""
    info = get_dataset_info(name)
    raw = info.load(info.resolve_dir(data_dir), download)
    for split, part in (("train", raw.train), ("test", raw.test)):
        labels = part.labels
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= info.num_classes):
            raise ValueError(f"{name} {split} labels must lie in [0, {info.num_classes}); "
                             f"found {int(labels.min())}..{int(labels.max())}")
    return raw

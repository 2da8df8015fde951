"""CIFAR-10/100 through torchvision (download only when the study asks for it)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch

from trainables.data.base import DatasetInfo, RawData, TensorDataset, register_dataset

DEFAULT_DIR = "~/.cache/smoothstudy/cifar"


def _split(cls, root: Path, train: bool, download: bool) -> TensorDataset:
    ds = cls(root=str(root), train=train, download=download)
    images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
    return TensorDataset(images, torch.as_tensor(ds.targets, dtype=torch.long))


def load(directory: Path | None, download: bool, *, variant: str) -> RawData:
    import torchvision.datasets as tvd

    cls = tvd.CIFAR10 if variant == "cifar10" else tvd.CIFAR100
    root = (directory or Path(DEFAULT_DIR)).expanduser()
    try:
        return RawData(_split(cls, root, True, download), _split(cls, root, False, download))
    except RuntimeError as err:
        raise FileNotFoundError(
            f"data_dir: {variant} not found under {root} ({err}); set download: true in the study's dataset "
            f"section (needs internet) or copy the extracted python version there"
        ) from None


_C10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
register_dataset(
    DatasetInfo(
        name="cifar10", load=partial(load, variant="cifar10"), num_classes=10, in_chans=3, image_size=32,
        class_names=_C10, mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), hflip=True,
        crop_padding=4, default_dir=DEFAULT_DIR, env_var="SMOOTHSTUDY_CIFAR_DIR", reference="Krizhevsky 2009",
    )
)
register_dataset(
    DatasetInfo(
        name="cifar100", load=partial(load, variant="cifar100"), num_classes=100, in_chans=3, image_size=32,
        class_names=tuple(f"class_{i}" for i in range(100)), mean=(0.5071, 0.4865, 0.4409),
        std=(0.2673, 0.2564, 0.2762), hflip=True, crop_padding=4, default_dir=DEFAULT_DIR,
        env_var="SMOOTHSTUDY_CIFAR_DIR", reference="Krizhevsky 2009",
    )
)

"""CIFAR-10/100 from the python-pickle version (``cifar-10-batches-py/``, ``cifar-100-python/``).

torchvision only downloads (``download: true``; it checks the archive's md5). Reading is done here from the
same pickle format, because torchvision's ``CIFAR10`` refuses any file whose md5 is not the published one,
which rules out tests on tiny files and locally re-packed copies.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from trainables.data.base import DatasetInfo, RawData, TensorDataset, register_dataset

DEFAULT_DIR = "~/.cache/smoothstudy/cifar"
ENV_VAR = "SMOOTHSTUDY_CIFAR_DIR"


@dataclass(frozen=True)
class CifarLayout:
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    label_key: str


LAYOUTS = {
    "cifar10": CifarLayout("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch",
                           "labels"),
    "cifar100": CifarLayout("cifar-100-python", ("train",), "test", "fine_labels"),
}


def read_batch(path: Path, label_key: str) -> TensorDataset:
    """One pickled batch: ``data`` uint8 (N, 3072), each row the R, G, B planes of 32×32; ``label_key``."""
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")  # the files are Python 2 pickles
    if not isinstance(entry, dict) or "data" not in entry or label_key not in entry:
        raise ValueError(f"{path}: not a CIFAR batch (expected a dict with 'data' and {label_key!r})")
    data = np.asarray(entry["data"])
    labels = np.asarray(entry[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: 'data' must be uint8 (N, 3072); got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: {data.shape[0]} images but {labels.shape[0]} labels")
    images = torch.from_numpy(np.ascontiguousarray(data.reshape(-1, 3, 32, 32)))
    return TensorDataset(images, torch.from_numpy(labels))


def _concat(parts: list[TensorDataset]) -> TensorDataset:
    return TensorDataset(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]))


def _download(variant: str, root: Path) -> None:
    import torchvision.datasets as tvd

    cls = tvd.CIFAR10 if variant == "cifar10" else tvd.CIFAR100
    cls(root=str(root), train=True, download=True)


def load(directory: Path | None, download: bool, *, variant: str) -> RawData:
    layout = LAYOUTS[variant]
    root = (directory or Path(DEFAULT_DIR)).expanduser()
    folder = root / layout.folder
    missing = [n for n in (*layout.train_files, layout.test_file) if not (folder / n).is_file()]
    if download and missing:  # files already there are used as they are (no network needed)
        _download(variant, root)
        missing = [n for n in missing if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"data_dir: {variant} not found: {folder} lacks {', '.join(missing)}; set download: true in the "
            f"study's dataset section (needs internet) or extract the python version of {variant} into "
            f"{root} (or set data_dir or {ENV_VAR})"
        )
    train = _concat([read_batch(folder / n, layout.label_key) for n in layout.train_files])
    return RawData(train, read_batch(folder / layout.test_file, layout.label_key))


_C10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_C100 = tuple(
    """apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel
    can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur
    dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion
    lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree
    pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea
    seal shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table
    tank telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman
    worm""".split()
)

register_dataset(
    DatasetInfo(
        name="cifar10", load=partial(load, variant="cifar10"), num_classes=10, in_chans=3, image_size=32,
        class_names=_C10, mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), hflip=True,
        crop_padding=4, default_dir=DEFAULT_DIR, env_var=ENV_VAR, reference="Krizhevsky 2009", train_size=50_000,
    )
)
register_dataset(
    DatasetInfo(
        name="cifar100", load=partial(load, variant="cifar100"), num_classes=100, in_chans=3, image_size=32,
        class_names=_C100, mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762), hflip=True,
        crop_padding=4, default_dir=DEFAULT_DIR, env_var=ENV_VAR, reference="Krizhevsky 2009", train_size=50_000,
    )
)

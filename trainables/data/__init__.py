"""Dataset registry. Importing this package registers every dataset module in it."""

import pkgutil
from importlib import import_module

from trainables.data.base import (
    DATASETS,
    DatasetInfo,
    RawData,
    TensorDataset,
    get_dataset_info,
    list_datasets,
    load_dataset,
    register_dataset,
)
from trainables.data.splits import Splits, make_splits

_NOT_DATASETS = {"base", "idx", "splits", "batches", "corruptions"}
for _mod in pkgutil.iter_modules(__path__):
    if _mod.name not in _NOT_DATASETS and not _mod.name.startswith("_"):
        import_module(f"{__name__}.{_mod.name}")

__all__ = [
    "DATASETS", "DatasetInfo", "RawData", "Splits", "TensorDataset", "get_dataset_info", "list_datasets",
    "load_dataset", "make_splits", "register_dataset",
]

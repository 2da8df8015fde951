"""Dataset registry. Importing this package registers the datasets below (a new dataset module is added there)."""

from trainables.data import cifar, digits, fashion_mnist, mnist5k  # noqa: F401  (register the datasets)
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

__all__ = [
    "DATASETS", "DatasetInfo", "RawData", "Splits", "TensorDataset", "get_dataset_info", "list_datasets",
    "load_dataset", "make_splits", "register_dataset",
]

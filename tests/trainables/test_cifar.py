import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from trainables.data import get_dataset_info, load_dataset
from trainables.data.cifar import ENV_VAR


def cifar_rows(first_id: int, n: int) -> np.ndarray:
    """(n, 3072) uint8 rows as the CIFAR files store them: 1024 red, 1024 green, 1024 blue, each row-major.

    In image i (global id ``first_id + i``) channel c at (y, x) holds ``(id + 40 c + y + 3 x) % 256``.
    """
    out = np.empty((n, 3, 32, 32), dtype=np.uint8)
    y, x = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    for i in range(n):
        for c in range(3):
            out[i, c] = (first_id + i + 40 * c + y + 3 * x) % 256
    return out.reshape(n, 3072)


def dump(path: Path, entry: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(entry, f, protocol=2)  # the published files are protocol-2 pickles written by Python 2


def write_cifar10(root: Path, per_batch: int = 2, n_test: int = 3) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for b in range(1, 6):
        first = (b - 1) * per_batch
        dump(folder / f"data_batch_{b}", {
            "batch_label": f"training batch {b} of 5", "labels": [(first + i) % 10 for i in range(per_batch)],
            "data": cifar_rows(first, per_batch),
            "filenames": [f"img_{first + i}.png" for i in range(per_batch)],
        })
    dump(folder / "test_batch", {
        "batch_label": "testing batch 1 of 1", "labels": [9 - i for i in range(n_test)],
        "data": cifar_rows(100, n_test), "filenames": [f"test_{i}.png" for i in range(n_test)],
    })
    dump(folder / "batches.meta", {"label_names": list(get_dataset_info("cifar10").class_names),
                                   "num_cases_per_batch": per_batch, "num_vis": 3072})
    return root


def write_cifar100(root: Path, n_train: int = 4, n_test: int = 2) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, n, first in (("train", n_train, 0), ("test", n_test, 50)):
        dump(folder / name, {
            "filenames": [f"{name}_{i}.png" for i in range(n)], "batch_label": f"{name} batch",
            "fine_labels": [(first + 37 * i) % 100 for i in range(n)],
            "coarse_labels": [i % 20 for i in range(n)],
            "data": cifar_rows(first, n),
        })
    dump(folder / "meta", {"fine_label_names": list(get_dataset_info("cifar100").class_names),
                           "coarse_label_names": [f"super_{i}" for i in range(20)]})
    return root


def expected_image(image_id: int) -> torch.Tensor:
    return torch.from_numpy(cifar_rows(image_id, 1).reshape(3, 32, 32))


def test_cifar10_reads_the_pickle_format(tmp_path):
    raw = load_dataset("cifar10", data_dir=write_cifar10(tmp_path))
    assert raw.train.images.shape == (10, 3, 32, 32) and raw.test.images.shape == (3, 3, 32, 32)
    assert raw.train.images.dtype == torch.uint8 and raw.train.labels.dtype == torch.int64
    assert raw.train.labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]  # batches 1..5 in order
    assert raw.test.labels.tolist() == [9, 8, 7]
    # planes and orientation: image 7, green channel, row 2, column 5 holds 7 + 40 + 2 + 15
    assert int(raw.train.images[7, 1, 2, 5]) == 64
    assert torch.equal(raw.train.images[7], expected_image(7))
    assert torch.equal(raw.test.images[2], expected_image(102))


def test_cifar100_reads_the_pickle_format(tmp_path):
    raw = load_dataset("cifar100", data_dir=write_cifar100(tmp_path))
    assert (len(raw.train), len(raw.test)) == (4, 2)
    assert raw.train.labels.tolist() == [0, 37, 74, 11]  # fine labels, not the coarse ones
    assert raw.test.labels.tolist() == [50, 87]
    assert torch.equal(raw.train.images[3], expected_image(3))
    assert torch.equal(raw.test.images[1], expected_image(51))


def test_cifar_class_names():
    info10, info100 = get_dataset_info("cifar10"), get_dataset_info("cifar100")
    assert len(info10.class_names) == 10 and info10.class_names[0] == "airplane"
    assert len(set(info100.class_names)) == 100 and info100.class_names[:2] == ("apple", "aquarium_fish")
    assert info100.class_names[-1] == "worm"


def test_cifar_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(write_cifar10(tmp_path)))
    assert len(load_dataset("cifar10").train) == 10


def test_cifar_missing_files(tmp_path):
    root = write_cifar10(tmp_path)
    (root / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks data_batch_4; set download: true"):
        load_dataset("cifar10", data_dir=root)
    with pytest.raises(FileNotFoundError, match="cifar100 not found"):
        load_dataset("cifar100", data_dir=tmp_path / "empty")


def test_cifar_bad_batch(tmp_path):
    root = write_cifar100(tmp_path)
    dump(root / "cifar-100-python" / "test", {"data": cifar_rows(0, 2), "fine_labels": [1]})
    with pytest.raises(ValueError, match="2 images but 1 labels"):
        load_dataset("cifar100", data_dir=root)
    dump(root / "cifar-100-python" / "test", {"data": cifar_rows(0, 2)[:, :100], "fine_labels": [1, 2]})
    with pytest.raises(ValueError, match=r"'data' must be uint8 \(N, 3072\)"):
        load_dataset("cifar100", data_dir=root)
    dump(root / "cifar-100-python" / "test", {"data": cifar_rows(0, 2), "labels": [1, 2]})
    with pytest.raises(ValueError, match="not a CIFAR batch"):
        load_dataset("cifar100", data_dir=root)


@pytest.mark.parametrize("variant", ["cifar10", "cifar100"])
def test_cifar_agrees_with_torchvision_reader(tmp_path, monkeypatch, variant):
    """torchvision reads the same files to the same arrays once its md5 check (which only the published
    files pass) is switched off; with it on, it refuses them, which is why the loader reads them itself."""
    import torchvision.datasets as tvd
    import torchvision.datasets.cifar as tv_cifar

    root = write_cifar10(tmp_path) if variant == "cifar10" else write_cifar100(tmp_path)
    cls = tvd.CIFAR10 if variant == "cifar10" else tvd.CIFAR100
    with pytest.raises(RuntimeError, match="not found or corrupted"):
        cls(root=str(root), train=True, download=False)
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)
    raw = load_dataset(variant, data_dir=root)
    for train, ours in ((True, raw.train), (False, raw.test)):
        theirs = cls(root=str(root), train=train, download=False)
        assert torch.equal(ours.images, torch.from_numpy(theirs.data).permute(0, 3, 1, 2))
        assert ours.labels.tolist() == list(theirs.targets)
    assert tuple(theirs.classes) == get_dataset_info(variant).class_names


def test_download_true_uses_the_files_already_there(tmp_path, monkeypatch):
    import trainables.data.cifar as cifar

    def no_network(*args, **kwargs):
        raise AssertionError("downloaded although the files are there")

    monkeypatch.setattr(cifar, "_download", no_network)
    raw = load_dataset("cifar100", data_dir=write_cifar100(tmp_path), download=True)
    assert raw.train.images.shape[0] == 4

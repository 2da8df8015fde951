import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from trainables.data.idx import load_idx_images_labels, read_idx


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """The IDX layout written by hand: 0, 0, type code, ndim, big-endian uint32 dims, then the data."""
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx(path: Path, array: np.ndarray, type_code: int = 0x08) -> Path:
    data = idx_bytes(array, type_code)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_read_idx_uint8_plain_and_gz(tmp_path, name):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    out = read_idx(write_idx(tmp_path / name, array))
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
    assert out[1, 2, 3] == 23 and out[0, 1, 0] == 4
    np.testing.assert_array_equal(out, array)


def test_read_idx_big_endian_int32(tmp_path):
    array = np.array([1, -2, 70000], dtype=">i4")
    out = read_idx(write_idx(tmp_path / "x-idx1", array, type_code=0x0C))
    assert out.tolist() == [1, -2, 70000]


def test_read_idx_bad_magic(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(ValueError, match="bad magic"):
        read_idx(path)
    path.write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00")  # 0x07 is no IDX type
    with pytest.raises(ValueError, match="bad magic"):
        read_idx(path)


def test_read_idx_size_mismatch(tmp_path):
    data = idx_bytes(np.zeros((3, 2, 2), dtype=np.uint8))
    path = tmp_path / "short"
    path.write_bytes(data[:-1])
    with pytest.raises(ValueError, match="12 bytes of data, file has 11"):
        read_idx(path)
    path.write_bytes(data + b"\x00")
    with pytest.raises(ValueError, match="12 bytes of data, file has 13"):
        read_idx(path)
    path.write_bytes(data[:8])  # header claims 3 dimensions but stops after one
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)


def test_load_images_labels_counts_must_match(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 4, 4), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([0, 1], dtype=np.uint8))
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        load_idx_images_labels(tmp_path, "train")


def test_load_images_labels_shapes_and_missing(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.full((2, 5, 5), 7, dtype=np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([9, 3], dtype=np.uint8))
    images, labels = load_idx_images_labels(tmp_path, "t10k")
    assert images.shape == (2, 1, 5, 5) and images.dtype == torch.uint8 and int(images[1, 0, 4, 4]) == 7
    assert labels.dtype == torch.int64 and labels.tolist() == [9, 3]
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_idx_images_labels(tmp_path, "train")

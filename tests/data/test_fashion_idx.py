"""IDX reader and Fashion-MNIST loader on tiny fixture files (gz and raw)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from ssdkd.data import (
    FASHION_MNIST_DIR,
    DatasetFormatError,
    DatasetNotFoundError,
    load_dataset,
    read_idx,
)


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool, type_code: int = 0x08) -> Path:
    data = idx_bytes(array, type_code)
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def write_fashion(directory: Path, compress: bool, train: int = 12, test: int = 5) -> None:
    rng = np.random.default_rng(0)
    for prefix, count in (("train", train), ("t10k", test)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = (np.arange(count) % 10).astype(np.uint8)
        write_idx(directory / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels, compress)


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trips_gz_and_raw(tmp_path: Path, compress: bool) -> None:
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a-idx3-ubyte", array, compress)), array)


def test_read_idx_big_endian_types(tmp_path: Path) -> None:
    array = np.array([[1.5, -2.0]], dtype=np.float32)
    out = read_idx(write_idx(tmp_path / "f-idx2", array, False, type_code=0x0D))
    assert out.dtype == np.float32
    assert np.array_equal(out, array)
    ints = np.array([70000, -3], dtype=np.int32)
    assert read_idx(write_idx(tmp_path / "i-idx1", ints, True, type_code=0x0C)).tolist() == [
        70000,
        -3,
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "magic"),
        (b"", "magic"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "element type"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x01", "truncated header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x03\x05\x06", "declares shape"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x01\x05\x06", "declares shape"),
    ],
)
def test_read_idx_rejects_corrupt_files_naming_them(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(DatasetFormatError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_rejects_broken_gzip(tmp_path: Path) -> None:
    path = tmp_path / "bad-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(100, np.uint8)))[:-20])
    with pytest.raises(DatasetFormatError, match=str(path)):
        read_idx(path)


@pytest.mark.parametrize("compress", [True, False])
def test_load_fashion_mnist_from_directory(tmp_path: Path, compress: bool) -> None:
    write_fashion(tmp_path, compress)
    data = load_dataset("fashion-mnist", tmp_path)
    assert data.name == "fashion-mnist"
    assert data.num_classes == 10
    assert data.x_train.shape == (12, 1, 28, 28)
    assert data.x_test.shape == (5, 1, 28, 28)
    assert data.x_train.dtype == torch.float32
    assert data.y_test.dtype == torch.int64
    assert data.x_train.min() >= 0
    assert data.x_train.max() <= 1
    assert data.y_train.tolist() == [i % 10 for i in range(12)]
    assert data.mean[0] == pytest.approx(float(data.x_train.mean()), rel=1e-5)


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path: Path) -> None:
    write_fashion(tmp_path, True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match="t10k-labels-idx1-ubyte") as info:
        load_dataset("fashion-mnist", tmp_path)
    assert "apt-get install -y dataset-fashion-mnist" in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


def test_mismatched_counts_name_the_label_file(tmp_path: Path) -> None:
    write_fashion(tmp_path, False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(11, np.uint8), False)
    with pytest.raises(DatasetFormatError, match=r"train-labels-idx1-ubyte.*12"):
        load_dataset("fashion-mnist", tmp_path)


def test_wrong_image_shape_names_the_image_file(tmp_path: Path) -> None:
    write_fashion(tmp_path, False)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((5, 27, 28), np.uint8), False)
    with pytest.raises(DatasetFormatError, match="t10k-images-idx3-ubyte"):
        load_dataset("fashion-mnist", tmp_path)


def test_labels_out_of_range_are_rejected(tmp_path: Path) -> None:
    write_fashion(tmp_path, False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.full(5, 10, np.uint8), False)
    with pytest.raises(DatasetFormatError, match="label 10"):
        load_dataset("fashion-mnist", tmp_path)


@pytest.mark.skipif(
    not (FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz").is_file(),
    reason="the Debian package dataset-fashion-mnist is not installed",
)
@pytest.mark.slow
def test_installed_fashion_mnist_has_the_official_counts() -> None:
    data = load_dataset("fashion-mnist")
    assert data.x_train.shape == (60000, 1, 28, 28)
    assert data.x_test.shape == (10000, 1, 28, 28)
    assert torch.bincount(data.y_test).tolist() == [1000] * 10


@pytest.mark.parametrize("compress", [True, False])
def test_load_mnist_reads_the_same_idx_files_from_its_directory(
    tmp_path: Path, compress: bool
) -> None:
    write_fashion(tmp_path, compress)
    data = load_dataset("mnist", tmp_path)
    assert data.name == "mnist"
    assert data.x_train.shape == (12, 1, 28, 28)
    assert data.x_test.shape == (5, 1, 28, 28)
    assert torch.equal(data.x_train, load_dataset("fashion-mnist", tmp_path).x_train)


def test_mnist_without_a_directory_or_a_file_says_what_it_needs(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="MNIST has no default location"):
        load_dataset("mnist")
    write_fashion(tmp_path, False)
    (tmp_path / "train-images-idx3-ubyte").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"MNIST not found.*train-images") as info:
        load_dataset("mnist", tmp_path)
    assert "apt-get" not in str(info.value)  # no package ships MNIST

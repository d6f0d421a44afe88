"""CIFAR-10/100 loaders on small fake batches in the "python version" layout."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from ssdkd.data import DatasetFormatError, DatasetNotFoundError, load_dataset, read_cifar_batch


def write_batch(path: Path, count: int, label_key: str, classes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    batch = {
        b"batch_label": b"fake batch",
        b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
        label_key.encode(): [int(v) for v in rng.integers(0, classes, count)],
        b"filenames": [b"x.png"] * count,
    }
    path.write_bytes(pickle.dumps(batch, protocol=2))


def write_cifar10(root: Path, count: int = 4) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        write_batch(folder / f"data_batch_{i}", count, "labels", 10, i)
    write_batch(folder / "test_batch", count + 1, "labels", 10, 0)
    return folder


def write_cifar100(root: Path) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    write_batch(folder / "train", 6, "fine_labels", 100, 1)
    write_batch(folder / "test", 3, "fine_labels", 100, 2)
    return folder


def test_cifar10_from_root_or_batch_folder(tmp_path: Path) -> None:
    folder = write_cifar10(tmp_path)
    for location in (tmp_path, folder):
        data = load_dataset("cifar10", location)
        assert data.num_classes == 10
        assert data.image_shape == (3, 32, 32)
        assert data.x_train.shape == (20, 3, 32, 32)
        assert data.x_test.shape == (5, 3, 32, 32)
        assert data.x_train.dtype == torch.float32
        assert data.y_train.dtype == torch.int64
        assert data.x_train.min() >= 0
        assert data.x_train.max() <= 1
        assert len(data.mean) == 3
        assert len(data.std) == 3


def test_cifar10_pixels_are_channel_major(tmp_path: Path) -> None:
    folder = write_cifar10(tmp_path)
    raw = pickle.loads((folder / "data_batch_1").read_bytes())
    images, labels = read_cifar_batch(folder / "data_batch_1", "labels")
    # The first 1024 bytes of a row are the red plane, row-major.
    assert np.array_equal(images[0, 0].ravel(), raw[b"data"][0, :1024])
    assert np.array_equal(images[0, 2, 31], raw[b"data"][0, -32:])
    assert labels.tolist() == raw[b"labels"]


def test_cifar100_uses_fine_labels(tmp_path: Path) -> None:
    write_cifar100(tmp_path)
    data = load_dataset("cifar100", tmp_path)
    assert data.num_classes == 100
    assert data.x_train.shape == (6, 3, 32, 32)
    assert data.x_test.shape == (3, 3, 32, 32)


def test_string_keys_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "batch"
    data = np.zeros((2, 3072), np.uint8)
    path.write_bytes(pickle.dumps({"data": data, "labels": [1, 2]}))
    assert read_cifar_batch(path, "labels")[1].tolist() == [1, 2]


def test_missing_directory_or_files_give_the_layout(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"cifar-10-batches-py.*data_batch_1"):
        load_dataset("cifar10")
    folder = write_cifar10(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"missing data_batch_3\)"):
        load_dataset("cifar10", tmp_path)
    with pytest.raises(DatasetNotFoundError, match="cifar-100-python"):
        load_dataset("cifar100", tmp_path)


@pytest.mark.parametrize(
    "content",
    [
        b"not a pickle",
        pickle.dumps([1, 2, 3]),
        pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}),
        pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}),
        pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}),
        pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}),
    ],
)
def test_corrupt_batches_name_the_file(tmp_path: Path, content: bytes) -> None:
    folder = write_cifar10(tmp_path)
    (folder / "data_batch_2").write_bytes(content)
    with pytest.raises(DatasetFormatError, match="data_batch_2"):
        load_dataset("cifar10", tmp_path)


def test_truncated_batch_names_the_file(tmp_path: Path) -> None:
    folder = write_cifar10(tmp_path)
    content = (folder / "test_batch").read_bytes()
    (folder / "test_batch").write_bytes(content[: len(content) // 2])
    with pytest.raises(DatasetFormatError, match="test_batch"):
        load_dataset("cifar10", tmp_path)


def test_out_of_range_labels_are_rejected(tmp_path: Path) -> None:
    folder = write_cifar10(tmp_path)
    write_batch(folder / "test_batch", 3, "labels", 100, 9)
    (folder / "test_batch").write_bytes(
        pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]})
    )
    with pytest.raises(DatasetFormatError, match=r"outside 0..9"):
        load_dataset("cifar10", tmp_path)


class _Payload:
    """Unpickling this would call os.system: the restricted unpickler must refuse it."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def test_pickles_with_other_globals_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil"
    path.write_bytes(pickle.dumps({b"data": _Payload(), b"labels": [0]}))
    with pytest.raises(DatasetFormatError, match="refusing to load global"):
        read_cifar_batch(path, "labels")

"""IDX files (the MNIST / Fashion-MNIST format) and the MNIST and Fashion-MNIST loaders."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssdkd.data.base import (
    Dataset,
    DatasetFormatError,
    DatasetNotFoundError,
    channel_stats,
    from_uint8,
)

__all__ = ["FASHION_MNIST_DIR", "load_fashion_mnist", "load_mnist", "read_idx"]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where the Debian package ``dataset-fashion-mnist`` installs the files."""

# The third byte of the magic number gives the element type; all are big-endian.
_IDX_TYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, gzip-compressed (name ending in ``.gz``) or raw.

    Layout: two zero bytes, a type byte, the number of dimensions ``d``, ``d`` big-endian
    uint32 sizes, then the elements in C order, big-endian.

    Args:
        path: The file.

    Returns:
        The array, shaped by the header, in native byte order.

    Raises:
        DatasetFormatError: Bad magic number, unknown type, or a size that does not match
            the header (the message names the file).
        FileNotFoundError: The file does not exist.

    Examples:
        >>> import tempfile
        >>> header = bytes([0, 0, 0x08, 1]) + (3).to_bytes(4, "big")
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     file = Path(tmp) / "x-idx1-ubyte"
        ...     _ = file.write_bytes(header + bytes([7, 8, 9]))
        ...     read_idx(file)
        array([7, 8, 9], dtype=uint8)
    """
    file = Path(path)
    try:
        if file.suffix == ".gz":
            with gzip.open(file, "rb") as handle:
                raw = handle.read()
        else:
            raw = file.read_bytes()
    except FileNotFoundError:
        raise
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetFormatError(f"cannot read IDX file {str(file)!r}: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DatasetFormatError(
            f"IDX file {str(file)!r} has a bad magic number (expected two zero bytes, "
            f"a type byte and a dimension count, got {raw[:4].hex() or 'an empty file'})"
        )
    if raw[2] not in _IDX_TYPES:
        raise DatasetFormatError(f"IDX file {str(file)!r} has unknown element type 0x{raw[2]:02x}")
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    header_end = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header_end:
        raise DatasetFormatError(
            f"IDX file {str(file)!r} has a truncated header ({ndim} dimensions declared)"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header_end != expected:
        raise DatasetFormatError(
            f"IDX file {str(file)!r} holds {len(raw) - header_end} data bytes, "
            f"but its header declares shape {shape} ({expected} bytes)"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_end).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _missing_message(name: str, directory: Path, missing: list[str]) -> str:
    if name == "mnist":
        hint = "pass the directory holding the four MNIST IDX files (raw or .gz) as `data_dir`"
    elif directory == FASHION_MNIST_DIR:
        hint = (
            "install the Debian package: `sudo apt-get update && sudo apt-get install -y "
            "dataset-fashion-mnist` (files go to /usr/share/datasets/fashion-mnist)"
        )
    else:
        hint = (
            "pass a directory holding the four Fashion-MNIST IDX files (raw or .gz), or "
            "omit it to use the Debian package `dataset-fashion-mnist` "
            "(`sudo apt-get install -y dataset-fashion-mnist`)"
        )
    title = "MNIST" if name == "mnist" else "Fashion-MNIST"
    return f"{title} not found in {str(directory)!r}: missing {', '.join(missing)}; {hint}"


def load_fashion_mnist(data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """Fashion-MNIST (60,000 / 10,000 images ``(1, 28, 28)``, 10 classes) from IDX files.

    Args:
        data_dir: Directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
            ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each raw or ``.gz``);
            defaults to :data:`FASHION_MNIST_DIR`. The official test set is the held-out
            split.

    Raises:
        DatasetNotFoundError: A file is missing (the message says how to get them).
        DatasetFormatError: A file is corrupt, or images and labels disagree.
    """
    directory = FASHION_MNIST_DIR if data_dir is None else Path(data_dir)
    return _load_idx_dataset("fashion-mnist", directory)


def load_mnist(data_dir: str | os.PathLike[str] | None) -> Dataset:
    """MNIST (60,000 / 10,000 images ``(1, 28, 28)``, 10 classes) from IDX files.

    Args:
        data_dir: Directory holding the four MNIST IDX files, with the same names as
            Fashion-MNIST's (:func:`load_fashion_mnist`). There is no default: no package
            of the operating system ships MNIST.

    Raises:
        DatasetNotFoundError: No ``data_dir``, or a file is missing.
        DatasetFormatError: A file is corrupt, or images and labels disagree.
    """
    if data_dir is None:
        raise DatasetNotFoundError(
            "MNIST has no default location: pass the directory holding its four IDX files "
            "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
            "t10k-labels-idx1-ubyte; raw or .gz) as `data_dir` (`--data-dir`)"
        )
    return _load_idx_dataset("mnist", Path(data_dir))


def _load_idx_dataset(name: str, directory: Path) -> Dataset:
    found = {stem: _find(directory, stem) for pair in _IDX_FILES.values() for stem in pair}
    missing = [stem + "[.gz]" for stem, path in found.items() if path is None]
    if missing:
        raise DatasetNotFoundError(_missing_message(name, directory, missing))
    splits = {}
    for split, (image_stem, label_stem) in _IDX_FILES.items():
        image_file, label_file = found[image_stem], found[label_stem]
        assert image_file is not None
        assert label_file is not None
        images, labels = read_idx(image_file), read_idx(label_file)
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DatasetFormatError(
                f"IDX file {str(image_file)!r} should hold uint8 images (N, 28, 28), "
                f"got {images.dtype} {images.shape}"
            )
        if labels.dtype != np.uint8 or labels.shape != (images.shape[0],):
            raise DatasetFormatError(
                f"IDX file {str(label_file)!r} should hold {images.shape[0]} uint8 labels "
                f"(one per image of {image_file.name}), got {labels.dtype} {labels.shape}"
            )
        if labels.size and labels.max() >= 10:
            raise DatasetFormatError(
                f"IDX file {str(label_file)!r} holds label {int(labels.max())}, expected 0..9"
            )
        splits[split] = (
            from_uint8(images[:, None]),
            torch.from_numpy(labels.astype(np.int64)),
        )
    mean, std = channel_stats(splits["train"][0])
    return Dataset(name, *splits["train"], *splits["test"], 10, mean, std)

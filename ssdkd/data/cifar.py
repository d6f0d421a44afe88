"""CIFAR-10/100 from a user directory in the standard "python version" layout.

The batches are Python pickles of dicts (``data``: uint8 ``(N, 3072)``, ``labels`` or
``fine_labels``: a list of ints). Unpickling can run arbitrary code, so the files are
read with a restricted unpickler that only reconstructs numpy arrays, dtypes and
latin-1 bytes, and rejects every other global.
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
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

__all__ = ["load_cifar", "read_cifar_batch"]

_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
"""numpy's array-unpickling helper, under whatever module name this numpy version uses."""


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """What protocol-2 pickles written by Python 3 call to rebuild ``bytes`` objects."""
    if not isinstance(text, str) or encoding.replace("-", "") != "latin1":
        raise pickle.UnpicklingError("unexpected arguments to _codecs.encode")
    return text.encode("latin1")


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("_codecs", "encode"): _latin1_encode,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


@dataclass(frozen=True)
class _Layout:
    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    labels: str
    classes: int
    home: str


_LAYOUTS = {
    "cifar10": _Layout(
        folder="cifar-10-batches-py",
        train=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test=("test_batch",),
        labels="labels",
        classes=10,
        home="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    ),
    "cifar100": _Layout(
        folder="cifar-100-python",
        train=("train",),
        test=("test",),
        labels="fine_labels",
        classes=100,
        home="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    ),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the numpy globals needed to rebuild arrays."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: CIFAR batches hold only "
                "dicts, lists and numpy arrays"
            ) from None


def read_cifar_batch(path: str | os.PathLike[str], label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR batch file.

    Args:
        path: A batch file, e.g. ``cifar-10-batches-py/data_batch_1``.
        label_key: ``"labels"`` (CIFAR-10) or ``"fine_labels"`` (CIFAR-100).

    Returns:
        uint8 images ``(N, 3, 32, 32)`` and int64 labels ``(N,)``.

    Raises:
        DatasetFormatError: Not a readable pickle of the expected dict (message names
            the file).

    Examples:
        >>> import tempfile
        >>> batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 1]}
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     file = Path(tmp) / "data_batch_1"
        ...     _ = file.write_bytes(pickle.dumps(batch, protocol=2))
        ...     images, labels = read_cifar_batch(file, "labels")
        >>> images.shape, labels.tolist()
        ((2, 3, 32, 32), [3, 1])
    """
    file = Path(path)
    try:
        content = _ArrayUnpickler(io.BytesIO(file.read_bytes()), encoding="bytes").load()
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise DatasetFormatError(
            f"CIFAR batch {str(file)!r} is corrupt or not a CIFAR pickle: {exc}"
        ) from exc
    if not isinstance(content, dict):
        raise DatasetFormatError(
            f"CIFAR batch {str(file)!r} holds a {type(content).__name__}, expected a dict"
        )
    # Files written by Python 2 have bytes keys; decode them so both spellings work.
    entries = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in content.items()}
    if "data" not in entries or label_key not in entries:
        raise DatasetFormatError(
            f"CIFAR batch {str(file)!r} lacks the 'data' or {label_key!r} entry "
            f"(found {sorted(map(str, entries))})"
        )
    data = entries["data"]
    labels = np.asarray(entries[label_key])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise DatasetFormatError(
            f"CIFAR batch {str(file)!r}: 'data' is not a uint8 (N, 3072) array"
        )
    if data.shape[1] != 3072 or labels.shape != (data.shape[0],):
        raise DatasetFormatError(
            f"CIFAR batch {str(file)!r}: expected 'data' (N, 3072) with N labels, "
            f"got {data.shape} and {labels.shape[0] if labels.ndim else 0} labels"
        )
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise DatasetFormatError(f"CIFAR batch {str(file)!r}: labels are not integers")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _batch_dir(name: str, data_dir: str | os.PathLike[str] | None) -> Path:
    layout = _LAYOUTS[name]
    files = [*layout.train, *layout.test]
    expected = (
        f"expected <data_dir>/{layout.folder}/ holding {', '.join(files)} — the 'python "
        f"version' from {layout.home}, downloaded and unpacked by you; ssdkd never downloads"
    )
    if data_dir is None:
        raise DatasetNotFoundError(f"{name} needs a data directory: {expected}")
    root = Path(data_dir)
    for directory in (root / layout.folder, root):
        if all((directory / file).is_file() for file in files):
            return directory
    missing = [file for file in files if not (root / layout.folder / file).is_file()]
    raise DatasetNotFoundError(
        f"{name} not found in {str(root)!r} (missing {', '.join(missing)}): {expected}"
    )


def load_cifar(name: str, data_dir: str | os.PathLike[str] | None) -> Dataset:
    """CIFAR-10 or CIFAR-100 (50,000 / 10,000 images ``(3, 32, 32)``).

    Args:
        name: ``"cifar10"`` or ``"cifar100"`` (fine labels).
        data_dir: The directory holding ``cifar-10-batches-py/`` (or ``cifar-100-python/``),
            or that folder itself.

    Raises:
        DatasetNotFoundError: No directory given or a batch file is missing (the message
            gives the expected layout).
        DatasetFormatError: A batch is corrupt or its labels are out of range.
    """
    if name not in _LAYOUTS:
        raise ValueError(f"Expected `name` to be 'cifar10' or 'cifar100', got {name!r}")
    layout = _LAYOUTS[name]
    directory = _batch_dir(name, data_dir)
    splits = []
    for files in (layout.train, layout.test):
        images, labels = [], []
        for file in files:
            batch_images, batch_labels = read_cifar_batch(directory / file, layout.labels)
            if batch_labels.size and (
                batch_labels.min() < 0 or batch_labels.max() >= layout.classes
            ):
                raise DatasetFormatError(
                    f"CIFAR batch {str(directory / file)!r} holds labels outside "
                    f"0..{layout.classes - 1}"
                )
            images.append(batch_images)
            labels.append(batch_labels)
        splits.append(
            (from_uint8(np.concatenate(images)), torch.from_numpy(np.concatenate(labels)))
        )
    mean, std = channel_stats(splits[0][0])
    return Dataset(name, *splits[0], *splits[1], layout.classes, mean, std)

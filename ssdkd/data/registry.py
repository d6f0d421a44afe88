"""``load_dataset``: every dataset of :mod:`ssdkd.data` by name."""

from __future__ import annotations

import os

from ssdkd.data.base import Dataset
from ssdkd.data.cifar import load_cifar
from ssdkd.data.digits import load_digits
from ssdkd.data.idx import load_fashion_mnist, load_mnist

__all__ = ["DATASETS", "load_dataset"]

DATASETS: tuple[str, ...] = ("digits", "mnist", "fashion-mnist", "cifar10", "cifar100")
"""Names accepted by :func:`load_dataset`."""


def load_dataset(name: str, data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """Load a real dataset from local files; nothing is ever downloaded.

    - ``"digits"``: scikit-learn's 8×8 digits (needs scikit-learn; ``data_dir`` unused),
      a fixed stratified 70 / 30 split.
    - ``"mnist"``: IDX files from ``data_dir`` (required); the official 10,000 test images
      are held out.
    - ``"fashion-mnist"``: IDX files from ``data_dir`` or the Debian package directory
      ``/usr/share/datasets/fashion-mnist``; the official 10,000 test images are held out.
    - ``"cifar10"`` / ``"cifar100"``: the "python version" batches in ``data_dir``.

    Images are float32 ``(N, C, H, W)`` in [0, 1]; ``mean``/``std`` are the per-channel
    statistics of the training split.

    Raises:
        ValueError: Unknown ``name`` (the message lists :data:`DATASETS`).
        DatasetNotFoundError: Files missing; the message says how to get them.
        DatasetFormatError: A file is corrupt; the message names it.
        ModuleNotFoundError: ``"digits"`` without scikit-learn (message has the pip command).

    Examples:
        >>> data = load_dataset("digits")
        >>> data.image_shape, data.num_classes, len(data.y_train), len(data.y_test)
        ((1, 8, 8), 10, 1258, 539)
    """
    if name == "digits":
        return load_digits()
    if name == "mnist":
        return load_mnist(data_dir)
    if name == "fashion-mnist":
        return load_fashion_mnist(data_dir)
    if name in ("cifar10", "cifar100"):
        return load_cifar(name, data_dir)
    raise ValueError(f"Unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")

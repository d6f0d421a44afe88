"""Real datasets for teacher training and evaluation, read from local files only.

:func:`load_dataset` returns a :class:`Dataset` with float32 images in [0, 1] and the
training split's per-channel mean/std. Missing files raise :class:`DatasetNotFoundError`
(a :class:`FileNotFoundError`) saying how to get them; corrupt files raise
:class:`DatasetFormatError` (a :class:`ValueError`) naming the file.
"""

from ssdkd.data.base import Dataset, DatasetFormatError, DatasetNotFoundError, channel_stats
from ssdkd.data.cifar import load_cifar, read_cifar_batch
from ssdkd.data.digits import load_digits, stratified_split
from ssdkd.data.idx import FASHION_MNIST_DIR, load_fashion_mnist, load_mnist, read_idx
from ssdkd.data.registry import DATASETS, load_dataset

__all__ = [
    "DATASETS",
    "FASHION_MNIST_DIR",
    "Dataset",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "channel_stats",
    "load_cifar",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "read_cifar_batch",
    "read_idx",
    "stratified_split",
]

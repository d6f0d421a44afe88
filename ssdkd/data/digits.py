"""scikit-learn's 8×8 digits with a fixed, stratified 70 / 30 split."""

from __future__ import annotations

import numpy as np
import torch

from ssdkd.data.base import Dataset, channel_stats

__all__ = ["DIGITS_SPLIT_SEED", "DIGITS_TEST_FRACTION", "load_digits", "stratified_split"]

DIGITS_TEST_FRACTION = 0.3
"""Fraction of each class held out for evaluation."""

DIGITS_SPLIT_SEED = 0
"""Seed of the split; the held-out indices never change."""


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices so that each class keeps its proportion in both parts.

    Within every class the indices are permuted by a :func:`numpy.random.default_rng`
    generator seeded with ``seed`` (classes in increasing order, so the result depends on
    nothing but the labels and the seed) and the first ``round(test_fraction · n_c)``
    go to the held-out part.

    Args:
        labels: Integer labels ``(N,)``.
        test_fraction: Held-out fraction in (0, 1).
        seed: Seed of the permutations.

    Returns:
        Sorted ``(train_indices, test_indices)``.

    Examples:
        >>> train, test = stratified_split(np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1]), 0.3, 0)
        >>> len(train), len(test)
        (7, 3)
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"Expected `test_fraction` in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        held_out = round(test_fraction * len(members))
        test.append(members[:held_out])
        train.append(members[held_out:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_digits() -> Dataset:
    """The 1,797 scikit-learn digits as ``(1, 8, 8)`` images in [0, 1] (pixel values / 16).

    Raises:
        ModuleNotFoundError: scikit-learn is not installed (the message gives the pip
            command).
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as exc:
        raise ModuleNotFoundError(
            "the digits dataset ships with scikit-learn, which is not installed: "
            "run `pip install scikit-learn` (or `pip install 'ssdkd[demo]'`)",
            name="sklearn",
        ) from exc
    bunch = sklearn_digits()
    images = np.asarray(bunch.images, dtype=np.float32) / 16.0
    labels = np.asarray(bunch.target, dtype=np.int64)
    train, test = stratified_split(labels, DIGITS_TEST_FRACTION, DIGITS_SPLIT_SEED)
    x = torch.from_numpy(images).unsqueeze(1)
    y = torch.from_numpy(labels)
    x_train = x[torch.from_numpy(train)]
    mean, std = channel_stats(x_train)
    return Dataset(
        "digits",
        x_train,
        y[torch.from_numpy(train)],
        x[torch.from_numpy(test)],
        y[torch.from_numpy(test)],
        10,
        mean,
        std,
    )

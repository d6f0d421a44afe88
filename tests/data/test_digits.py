"""Digits: the fixed, stratified split and the dataset record."""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np
import pytest
import torch

from ssdkd.data import Dataset, load_dataset, stratified_split


def test_digits_images_labels_and_statistics() -> None:
    data = load_dataset("digits")
    assert data.name == "digits"
    assert data.num_classes == 10
    assert data.image_shape == (1, 8, 8)
    assert data.x_train.dtype == torch.float32
    assert data.y_train.dtype == torch.int64
    assert data.x_train.min() >= 0
    assert data.x_train.max() <= 1
    assert len(data.y_train) + len(data.y_test) == 1797
    assert len(data.y_test) == 539
    assert data.mean[0] == pytest.approx(float(data.x_train.mean()), rel=1e-5)
    assert data.std[0] == pytest.approx(float(data.x_train.std(correction=0)), rel=1e-4)


def test_digits_split_is_fixed() -> None:
    a, b = load_dataset("digits"), load_dataset("digits")
    assert torch.equal(a.x_test, b.x_test)
    assert torch.equal(a.y_train, b.y_train)
    # Pinned: the held-out indices must never change between versions or machines.
    from sklearn.datasets import load_digits

    _, held_out = stratified_split(load_digits().target, 0.3, 0)
    assert held_out[:12].tolist() == [1, 5, 6, 9, 12, 14, 15, 16, 17, 19, 23, 24]
    assert int(held_out.sum()) == 482673
    train, test = stratified_split(np.repeat(np.arange(10), 50), 0.3, 0)
    train2, test2 = stratified_split(np.repeat(np.arange(10), 50), 0.3, 0)
    assert np.array_equal(test, test2)
    assert np.array_equal(train, train2)


def test_digits_split_is_stratified() -> None:
    data = load_dataset("digits")
    train = torch.bincount(data.y_train, minlength=10).double()
    test = torch.bincount(data.y_test, minlength=10).double()
    fraction = test / (train + test)
    assert ((fraction - 0.3).abs() < 0.01).all()


def test_stratified_split_partitions_indices_per_class() -> None:
    labels = np.array([2] * 10 + [0] * 7 + [5] * 3)
    train, test = stratified_split(labels, 0.3, 1)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(labels)))
    assert np.bincount(labels[test]).tolist() == [2, 0, 3, 0, 0, 1]
    _, other = stratified_split(labels, 0.3, 2)
    assert not np.array_equal(test, other)
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(labels, 1.0, 0)


def test_missing_scikit_learn_gives_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("sklearn"):
            raise ImportError("no sklearn")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ModuleNotFoundError, match="pip install scikit-learn"):
        load_dataset("digits")


def test_unknown_dataset_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="digits, mnist, fashion-mnist, cifar10, cifar100"):
        load_dataset("kmnist")


def test_dataset_record_validates_and_is_frozen() -> None:
    x, y = torch.rand(3, 1, 2, 2), torch.tensor([0, 1, 0])
    data = Dataset("toy", x, y, x, y, 2, (0.5,), (0.2,))
    with pytest.raises(AttributeError):
        data.name = "other"  # type: ignore[misc]
    with pytest.raises(ValueError, match="y_train"):
        Dataset("toy", x, y.int(), x, y, 2, (0.5,), (0.2,))
    with pytest.raises(ValueError, match="x_test"):
        Dataset("toy", x, y, x.double(), y, 2, (0.5,), (0.2,))
    with pytest.raises(ValueError, match="mean"):
        Dataset("toy", x, y, x, y, 2, (0.5, 0.5), (0.2,))

"""Collapse diagnostics on hand-made batches."""

from __future__ import annotations

import math

import pytest
import torch

from ssdkd.methods.diagnostics import batch_diagnostics, class_entropy, top_class_share


def test_a_one_class_batch_has_entropy_zero_and_top_share_one() -> None:
    labels = torch.full((50,), 7)
    assert float(class_entropy(labels, 10)) == 0.0
    assert not torch.signbit(class_entropy(labels, 10))  # 0.0, not -0.0, in the records
    assert float(top_class_share(labels, 10)) == 1.0


def test_a_balanced_batch_has_entropy_one_and_top_share_one_over_k() -> None:
    labels = torch.arange(40) % 10
    assert float(class_entropy(labels, 10)) == pytest.approx(1.0, abs=1e-6)
    assert float(top_class_share(labels, 10)) == pytest.approx(0.1)


def test_entropy_matches_the_formula_on_an_uneven_batch() -> None:
    labels = torch.tensor([0, 0, 0, 1])  # shares 3/4, 1/4 of K = 4 classes
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(4)
    assert float(class_entropy(labels, 4)) == pytest.approx(expected, rel=1e-6)
    assert float(top_class_share(labels, 4)) == 0.75


def test_an_empty_batch_gives_zero() -> None:
    empty = torch.zeros(0, dtype=torch.long)
    assert float(class_entropy(empty, 3)) == 0.0
    assert float(top_class_share(empty, 3)) == 0.0


@pytest.mark.parametrize(
    ("labels", "num_classes", "message"),
    [
        (torch.rand(4), 10, "integer"),
        (torch.zeros(2, 2, dtype=torch.long), 10, "1-D"),
        (torch.zeros(3, dtype=torch.long), 1, "num_classes"),
        ([0, 1], 10, "torch.Tensor"),
    ],
)
def test_bad_labels_are_refused(labels, num_classes, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises((TypeError, ValueError), match=message):
        class_entropy(labels, num_classes)
    with pytest.raises((TypeError, ValueError), match=message):
        top_class_share(labels, num_classes)


def test_batch_diagnostics_of_a_hand_made_batch() -> None:
    # Two confident class-0 images, one uncertain image (argmax 1): targets 0, 1, 2.
    logits = torch.tensor([[10.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 0.1, 0.0]])
    out = batch_diagnostics(logits, torch.tensor([0, 1, 2]))
    probs = logits.softmax(dim=1).max(dim=1).values
    assert out["teacher_confidence"] == pytest.approx(float(probs.mean()), rel=1e-6)
    assert out["target_agreement"] == pytest.approx(1 / 3)
    assert out["synth_class_entropy"] == pytest.approx(
        float(class_entropy(torch.tensor([0, 0, 1]), 3))
    )
    assert "target_agreement" not in batch_diagnostics(logits)

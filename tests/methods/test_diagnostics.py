"""Collapse diagnostics on hand-made batches."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ssdkd.methods.diagnostics import (
    batch_diagnostics,
    class_entropy,
    top_class_share,
    within_class_diversity,
)


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


@given(
    n=st.integers(2, 30),
    dim=st.integers(1, 6),
    classes=st.integers(2, 4),
    seed=st.integers(0, 2**31),
)
@pytest.mark.property
def test_within_class_diversity_equals_the_pairwise_definition(
    n: int, dim: int, classes: int, seed: int
) -> None:
    """The O(N·D) formula against the mean of 1 − cos over every distinct pair."""
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n, dim, generator=g, dtype=torch.float64)
    labels = torch.randint(0, classes, (n,), generator=g)
    per_class = []
    for c in range(classes):
        members = features[labels == c]
        if len(members) < 2:
            continue
        distances = [
            1.0 - torch.nn.functional.cosine_similarity(members[i], members[j], dim=0)
            for i in range(len(members))
            for j in range(len(members))
            if i != j
        ]
        per_class.append(torch.stack(distances).mean())
    expected = torch.stack(per_class).mean() if per_class else torch.tensor(0.0)
    got = within_class_diversity(features, labels, classes)
    assert float(got) == pytest.approx(float(expected), abs=1e-9)


def test_within_class_diversity_is_zero_for_copies_and_refuses_bad_shapes() -> None:
    copies = torch.ones(6, 3)
    diversity = within_class_diversity(copies, torch.tensor([0, 0, 0, 1, 1, 1]), 2)
    assert float(diversity) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        within_class_diversity(torch.ones(6), torch.zeros(6, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="one label per feature row"):
        within_class_diversity(torch.ones(6, 2), torch.zeros(5, dtype=torch.long), 2)

"""Hypothesis properties of SSD-KD's modulating function φ."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ssdkd.losses import diversity_difficulty_weights

pytestmark = pytest.mark.property


@st.composite
def phi_inputs(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, float]:
    batch = draw(st.integers(1, 8))
    classes = draw(st.integers(1, 6))
    finite = st.floats(-30, 30, allow_nan=False, width=32)
    logits = torch.tensor(draw(st.lists(st.lists(finite, min_size=classes, max_size=classes),
                                        min_size=batch, max_size=batch)))  # fmt: skip
    counts = torch.tensor(draw(st.lists(st.integers(0, 50), min_size=classes, max_size=classes)))
    gamma = draw(st.floats(0, 5, allow_nan=False))
    return logits, counts, gamma


def _targets(draw: st.DrawFn, batch: int, classes: int) -> torch.Tensor:
    return torch.tensor(draw(st.lists(st.integers(0, classes - 1), min_size=batch, max_size=batch)))


@given(phi_inputs(), st.data())
def test_values_lie_in_unit_interval(inputs: tuple, data: st.DataObject) -> None:
    logits, counts, gamma = inputs
    targets = data.draw(st.none() | st.just(_targets(data.draw, *logits.shape)))
    phi = diversity_difficulty_weights(logits, counts, gamma=gamma, targets=targets)
    assert phi.shape == (logits.shape[0],)
    assert ((phi >= 0) & (phi <= 1)).all()


@given(phi_inputs(), st.randoms(use_true_random=False))
def test_permutation_equivariant(inputs: tuple, rnd: object) -> None:
    logits, counts, gamma = inputs
    order = list(range(logits.shape[0]))
    rnd.shuffle(order)  # type: ignore[attr-defined]
    perm = torch.tensor(order)
    phi = diversity_difficulty_weights(logits, counts, gamma=gamma)
    torch.testing.assert_close(
        diversity_difficulty_weights(logits[perm], counts, gamma=gamma), phi[perm], rtol=0, atol=0
    )


@given(phi_inputs())
def test_non_increasing_in_teacher_confidence(inputs: tuple) -> None:
    logits, counts, gamma = inputs
    phi = diversity_difficulty_weights(logits, counts, gamma=gamma)
    # The class is the argmax of the logits: two logits that differ by less than float32
    # resolution give equal probabilities, and the argmax of those could pick another one.
    # Confidence is compared through 1 − p, the sum of the other classes' probabilities,
    # as φ reads it: p itself rounds to 1 for every confident sample, 1 − p does not.
    predicted = logits.argmax(dim=1)
    doubt = torch.softmax(logits, dim=1).scatter(1, predicted[:, None], 0.0).sum(dim=1)
    for i in range(len(phi)):
        for j in range(len(phi)):
            same_class = predicted[i] == predicted[j]
            if same_class and doubt[i] >= doubt[j]:
                assert phi[i] >= phi[j]


@given(phi_inputs(), st.floats(1.0, 10.0))
def test_sharpening_the_teacher_never_raises_phi(inputs: tuple, scale: float) -> None:
    logits, counts, gamma = inputs
    # Scaling logits by ≥ 1 keeps the argmax and raises the maximum probability.
    before = diversity_difficulty_weights(logits, counts, gamma=gamma)
    after = diversity_difficulty_weights(logits * scale, counts, gamma=gamma)
    assert (after <= before + 1e-6).all()


@given(phi_inputs())
def test_a_more_frequent_class_never_gets_a_larger_diversity_factor(inputs: tuple) -> None:
    logits, counts, _ = inputs
    diversity = diversity_difficulty_weights(logits, counts, gamma=0.0)
    predicted = logits.argmax(dim=1)
    for i in range(len(diversity)):
        for j in range(len(diversity)):
            if counts[predicted[i]] > counts[predicted[j]]:
                assert diversity[i] <= diversity[j]


@given(phi_inputs())
def test_gamma_zero_leaves_only_the_diversity_factor(inputs: tuple) -> None:
    logits, counts, _ = inputs
    total = counts.sum().item()
    predicted = logits.argmax(dim=1)
    expected = torch.tensor(
        [1.0 - (counts[c].item() / total if total else 0.0) for c in predicted.tolist()]
    )
    torch.testing.assert_close(diversity_difficulty_weights(logits, counts, gamma=0.0), expected)

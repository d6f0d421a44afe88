"""Properties of the generator family's losses: class balance, activation, attention."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ssdkd.losses import (
    AttentionTransferLoss,
    InformationEntropyLoss,
    attention_map,
    attention_transfer,
    information_entropy,
)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 8), st.integers(2, 12), st.integers(0, 2**31 - 1))
def test_information_entropy_is_smallest_exactly_for_a_balanced_batch(
    batch: int, classes: int, seed: int
) -> None:
    logits = torch.randn(batch, classes, generator=torch.Generator().manual_seed(seed)) * 3
    value = float(information_entropy(logits.double()))
    floor = -math.log(classes)
    assert floor - 1e-12 <= value <= 1e-12
    mean = logits.double().softmax(dim=1).mean(dim=0)
    if float((mean - 1 / classes).abs().max()) > 1e-3:
        assert value > floor + 1e-9  # not balanced: strictly above the minimum


def test_information_entropy_bounds_are_reached() -> None:
    balanced = torch.eye(5) * 50  # one confident image per class: p̄ uniform
    assert float(information_entropy(balanced)) == pytest.approx(-math.log(5), abs=1e-6)
    one_class = torch.zeros(6, 5)
    one_class[:, 2] = 50
    assert float(information_entropy(one_class)) == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(InformationEntropyLoss()(balanced), information_entropy(balanced))


def test_information_entropy_gradient_pushes_towards_balance() -> None:
    """A step against the gradient must make the batch's mean prediction more uniform."""
    logits = torch.tensor([[3.0, 0.0, 0.0], [2.0, 0.5, 0.0]], requires_grad=True)
    information_entropy(logits).backward()
    assert logits.grad is not None
    stepped = (logits - 0.5 * logits.grad).detach()
    assert float(information_entropy(stepped)) < float(information_entropy(logits.detach()))
    assert torch.autograd.gradcheck(
        information_entropy, (torch.randn(4, 3).double().requires_grad_(),)
    )


def test_information_entropy_keeps_float64_and_computes_bf16_in_float32() -> None:
    assert information_entropy(torch.zeros(2, 3, dtype=torch.float64)).dtype == torch.float64
    assert information_entropy(torch.zeros(2, 3, dtype=torch.bfloat16)).dtype == torch.float32


def test_attention_maps_have_unit_norm_and_ignore_the_channel_count() -> None:
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(3, 4, 5, 6, generator=gen)
    maps = attention_map(features)
    assert maps.shape == (3, 30)
    torch.testing.assert_close(maps.norm(dim=1), torch.ones(3))
    # Doubling the channels with a copy leaves the channel mean, and so the map, as it was.
    torch.testing.assert_close(attention_map(torch.cat([features, features], dim=1)), maps)


def test_attention_transfer_is_zero_exactly_for_equal_maps_and_sums_blocks() -> None:
    gen = torch.Generator().manual_seed(1)
    s1, t1 = torch.randn(2, 3, 4, 4, generator=gen), torch.randn(2, 5, 4, 4, generator=gen)
    s2, t2 = torch.randn(2, 3, 2, 2, generator=gen), torch.randn(2, 5, 2, 2, generator=gen)
    torch.testing.assert_close(attention_transfer([s1], [s1 * 3]), torch.zeros(2))
    both = attention_transfer([s1, s2], [t1, t2])
    torch.testing.assert_close(
        both, attention_transfer([s1], [t1]) + attention_transfer([s2], [t2])
    )
    assert bool((both > 0).all())
    by_hand = (attention_map(s1) - attention_map(t1)).pow(2).mean(dim=1)
    torch.testing.assert_close(attention_transfer([s1], [t1]), by_hand)
    module = AttentionTransferLoss(reduction="mean")
    torch.testing.assert_close(module([s1, s2], [t1, t2]), both.mean())
    double = [s1.double().requires_grad_(), t1.double().requires_grad_()]
    assert torch.autograd.gradcheck(lambda a, b: attention_transfer([a], [b]), tuple(double))


@pytest.mark.parametrize(
    ("student", "teacher", "message"),
    [
        ([], [], r"same non-zero number of student and teacher blocks, got 0 and 0"),
        ([torch.ones(1, 2, 2, 2)], [], r"got 1 and 0"),
        (
            [torch.ones(1, 2, 2, 2)],
            [torch.ones(1, 2, 4, 4)],
            r"block 0 .* \(1, 2, 2, 2\) and \(1, 2, 4, 4\)",
        ),
        ([torch.ones(1, 2, 2)], [torch.ones(1, 2, 2)], r"\(B, C, H, W\), got \(1, 2, 2\)"),
    ],
)
def test_attention_transfer_refuses_mismatched_blocks(student, teacher, message) -> None:
    with pytest.raises(ValueError, match=message):
        attention_transfer(student, teacher)

"""The checklist every per-sample loss passes: function == module, reductions, gradcheck."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from torch import nn

from ssdkd.losses import (
    ActivationLoss,
    AdversarialKLLoss,
    ImageL2Loss,
    JSCompetitionLoss,
    KDLoss,
    LogitL1Loss,
    TotalVariationLoss,
    activation_loss,
    adversarial_kl,
    image_l2,
    js_competition,
    kd_kl_div,
    logit_l1,
    total_variation,
)


def _logit_pair(dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    teacher = torch.randn(5, 4, generator=gen, dtype=dtype) * 2
    # Mostly agreeing with the teacher (so the adversarial mask is not all zero), with one
    # sample whose argmax differs.
    student = teacher + 0.3 * torch.randn(5, 4, generator=gen, dtype=dtype)
    student[0] = -teacher[0]
    return student, teacher


def _images(dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(1)
    return (torch.rand(3, 2, 4, 5, generator=gen, dtype=dtype),)


@dataclass(frozen=True)
class Case:
    name: str
    function: Callable[..., torch.Tensor]
    module: Callable[..., nn.Module]
    inputs: Callable[[torch.dtype], tuple[torch.Tensor, ...]]
    kwargs: dict[str, Any] = field(default_factory=dict)
    reductions: tuple[str, ...] = ("none", "mean", "sum")


KL = ("none", "mean", "sum", "batchmean")
CASES = [
    Case("kd_kl_div", kd_kl_div, KDLoss, _logit_pair, {"temperature": 2.0}, KL),
    Case(
        "adversarial_kl", adversarial_kl, AdversarialKLLoss, _logit_pair, {"temperature": 2.0}, KL
    ),
    Case("js_competition", js_competition, JSCompetitionLoss, _logit_pair, {"temperature": 3.0}),
    Case("logit_l1", logit_l1, LogitL1Loss, _logit_pair),
    Case("total_variation_l1", total_variation, TotalVariationLoss, _images, {"p": 1}),
    Case("total_variation_l2", total_variation, TotalVariationLoss, _images, {"p": 2}),
    Case("image_l2", image_l2, ImageL2Loss, _images),
    Case("activation_loss", activation_loss, ActivationLoss, _images),
]
IDS = [case.name for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_none_is_per_sample(case: Case) -> None:
    inputs = case.inputs(torch.float32)
    out = case.function(*inputs, **case.kwargs)
    assert out.shape == (inputs[0].shape[0],)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_function_equals_module(case: Case) -> None:
    inputs = case.inputs(torch.float32)
    for reduction in case.reductions:
        module = case.module(**case.kwargs, reduction=reduction)
        expected = case.function(*inputs, **case.kwargs, reduction=reduction)
        torch.testing.assert_close(module(*inputs), expected, rtol=0, atol=0)
        assert repr(module)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_reduction_agrees_with_none(case: Case) -> None:
    inputs = case.inputs(torch.float64)
    per_sample = case.function(*inputs, **case.kwargs, reduction="none")
    by_hand = {"none": per_sample, "mean": per_sample.mean(), "sum": per_sample.sum()}
    by_hand["batchmean"] = per_sample.sum() / per_sample.shape[0]
    for reduction in case.reductions:
        got = case.function(*inputs, **case.kwargs, reduction=reduction)
        torch.testing.assert_close(got, by_hand[reduction])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck_float64(case: Case) -> None:
    inputs = tuple(t.clone().requires_grad_() for t in case.inputs(torch.float64))
    assert torch.autograd.gradcheck(
        lambda *xs: case.function(*xs, **case.kwargs, reduction="none"), inputs
    )


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_unknown_reduction_raises(case: Case) -> None:
    inputs = case.inputs(torch.float32)
    with pytest.raises(ValueError, match=r"`reduction` to be one of .* got 'avg'"):
        case.function(*inputs, **case.kwargs, reduction="avg")
    with pytest.raises(ValueError, match="`reduction`"):
        case.module(**case.kwargs, reduction="avg")


@pytest.mark.parametrize("case", [c for c in CASES if c.reductions != KL], ids=lambda c: c.name)
def test_batchmean_only_where_kl_needs_it(case: Case) -> None:
    with pytest.raises(ValueError, match="got 'batchmean'"):
        case.function(*case.inputs(torch.float32), **case.kwargs, reduction="batchmean")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_integer_input_is_a_type_error(case: Case) -> None:
    inputs = tuple(t.long() for t in case.inputs(torch.float32))
    with pytest.raises(TypeError, match=r"floating-point tensor, got dtype torch\.int64"):
        case.function(*inputs, **case.kwargs)

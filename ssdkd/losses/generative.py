"""Generator losses of the generator family (DAFL, ZSKT, DFQ): class balance, activation
and attention transfer."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssdkd.losses._checks import (
    check_float_tensor,
    check_logits,
    check_reduction,
    reduce_batch,
)

__all__ = [
    "ActivationLoss",
    "AttentionTransferLoss",
    "InformationEntropyLoss",
    "activation_loss",
    "attention_map",
    "attention_transfer",
    "information_entropy",
]


def _at_least_float32(values: Tensor) -> Tensor:
    """fp16/bf16 (autocast outputs) in float32; float32 and float64 as they are."""
    return values if values.dtype in (torch.float32, torch.float64) else values.float()


def information_entropy(teacher_logits: Tensor) -> Tensor:
    """DAFL's class-balance term: Σ_c p̄_c log p̄_c, with p̄ the batch mean of softmax.

    The negative entropy of the batch's mean prediction, in nats. A generator minimises
    it; its minimum, −log K, is reached exactly when the batch gives every class the same
    mean probability, and it is 0 when every image goes to one class with certainty. It
    is a property of the batch, not of each image, so it has no per-sample form. DAFL's
    paper writes log₁₀: that is this value / ln 10, so a published weight ``w`` on the
    log₁₀ form is ``w / ln 10`` here.

    Args:
        teacher_logits: ``(B, K)`` logits of the teacher on the batch.

    Returns:
        A scalar in [−log K, 0].

    Raises:
        TypeError: ``teacher_logits`` is not a floating-point tensor.
        ValueError: ``teacher_logits`` is not ``(B, K)`` with B, K ≥ 1.

    Examples:
        >>> information_entropy(torch.zeros(4, 2))  # every class equally: −log 2
        tensor(-0.6931)
    """
    logits = check_logits("teacher_logits", teacher_logits)
    mean = _at_least_float32(logits).softmax(dim=1).mean(dim=0)
    return (mean * mean.clamp_min(torch.finfo(mean.dtype).tiny).log()).sum()


def activation_loss(features: Tensor, reduction: str = "none") -> Tensor:
    """DAFL's activation term: minus the mean absolute feature, per sample.

    loss_i = −(1/D) Σ_j |f_ij| over the features of sample i (any shape after the batch
    dimension, flattened). A generator minimises it: images on which the teacher's
    features fire strongly are taken to look like its training data.

    Args:
        features: ``(B, ...)`` features of the teacher (its penultimate layer in DAFL).
        reduction: ``"none"`` → ``(B,)``, ``"mean"`` or ``"sum"`` over the batch.

    Returns:
        ``(B,)`` or a scalar, ≤ 0.

    Raises:
        TypeError: ``features`` is not a floating-point tensor.
        ValueError: ``features`` has no batch or feature dimension, or unknown reduction.

    Examples:
        >>> activation_loss(torch.tensor([[1.0, -3.0], [0.0, 0.0]]))
        tensor([-2., -0.])
    """
    values = check_float_tensor("features", features)
    if values.dim() < 2 or values.shape[0] == 0 or values[0].numel() == 0:
        raise ValueError(
            "Expected `features` of shape (B, ...) with B >= 1 and at least one feature, "
            f"got {tuple(values.shape)}"
        )
    reduction = check_reduction(reduction)
    return reduce_batch(-values.flatten(1).abs().mean(dim=1), reduction)


def attention_map(features: Tensor) -> Tensor:
    """ZSKT's spatial attention: the channel mean of the squared activations, flattened
    and L2-normalised per sample.

    Args:
        features: ``(B, C, H, W)`` activations of one block.

    Returns:
        ``(B, H·W)`` rows of unit L2 norm (zero where every activation is zero).

    Examples:
        >>> attention_map(torch.ones(1, 3, 1, 2))
        tensor([[0.7071, 0.7071]])
    """
    values = check_float_tensor("features", features)
    if values.dim() != 4:
        raise ValueError(f"Expected `features` of shape (B, C, H, W), got {tuple(values.shape)}")
    return F.normalize(_at_least_float32(values).pow(2).mean(dim=1).flatten(1), dim=1)


def attention_transfer(
    student_features: Sequence[Tensor], teacher_features: Sequence[Tensor], reduction: str = "none"
) -> Tensor:
    """ZSKT's attention-transfer term, per sample: Σ_l mean_p (a_S,l − a_T,l)²_p.

    ``a`` is :func:`attention_map` of each block's output, ``p`` runs over its H·W
    positions. ZSKT weights it by β = 250 beside the KL term.

    Args:
        student_features: The student's ``(B, C_l, H_l, W_l)`` block outputs.
        teacher_features: The teacher's, one per student block, with the same B, H_l, W_l
            (the channels may differ).
        reduction: ``"none"`` → ``(B,)``, ``"mean"`` or ``"sum"`` over the batch.

    Returns:
        ``(B,)`` or a scalar, ≥ 0; 0 exactly when every pair of maps is equal.

    Raises:
        ValueError: No blocks, a different number of blocks, or a pair whose batch or
            spatial sizes differ (the message names the block).

    Examples:
        >>> s, t = [torch.ones(2, 4, 3, 3)], [torch.ones(2, 8, 3, 3)]
        >>> attention_transfer(s, t)
        tensor([0., 0.])
    """
    reduction = check_reduction(reduction)
    if len(student_features) == 0 or len(student_features) != len(teacher_features):
        raise ValueError(
            "Expected the same non-zero number of student and teacher blocks, got "
            f"{len(student_features)} and {len(teacher_features)}"
        )
    total: Tensor | None = None
    for index, (student, teacher) in enumerate(
        zip(student_features, teacher_features, strict=True)
    ):
        a_s, a_t = attention_map(student), attention_map(teacher)
        if a_s.shape != a_t.shape:
            raise ValueError(
                f"Expected block {index} of the student and the teacher to have the same "
                f"batch and spatial sizes, got {tuple(student.shape)} and {tuple(teacher.shape)}"
            )
        term = (a_s - a_t).pow(2).mean(dim=1)
        total = term if total is None else total + term
    assert total is not None
    return reduce_batch(total, reduction)


class InformationEntropyLoss(nn.Module):
    """Module twin of :func:`information_entropy`.

    Examples:
        >>> InformationEntropyLoss()(torch.tensor([[9.0, 0.0], [0.0, 9.0]]))
        tensor(-0.6931)
    """

    def forward(self, teacher_logits: Tensor) -> Tensor:
        """See :func:`information_entropy`."""
        return information_entropy(teacher_logits)


class ActivationLoss(nn.Module):
    """Module twin of :func:`activation_loss`.

    Examples:
        >>> ActivationLoss(reduction="mean")(torch.ones(2, 3))
        tensor(-1.)
    """

    def __init__(self, reduction: str = "none") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, features: Tensor) -> Tensor:
        """See :func:`activation_loss`."""
        return activation_loss(features, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class AttentionTransferLoss(nn.Module):
    """Module twin of :func:`attention_transfer`.

    Examples:
        >>> maps = [torch.ones(1, 2, 2, 2)]
        >>> AttentionTransferLoss(reduction="sum")(maps, maps)
        tensor(0.)
    """

    def __init__(self, reduction: str = "none") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(
        self, student_features: Sequence[Tensor], teacher_features: Sequence[Tensor]
    ) -> Tensor:
        """See :func:`attention_transfer`."""
        return attention_transfer(student_features, teacher_features, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"

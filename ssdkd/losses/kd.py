"""The knowledge-distillation loss: KL divergence between softened distributions."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ssdkd.losses._checks import check_logit_pair, check_number, check_reduction, reduce_batch

__all__ = ["KL_REDUCTIONS", "KDLoss", "kd_kl_div"]

# The reductions of the KL-based losses; "batchmean" is torch's name for the KL convention.
KL_REDUCTIONS = ("none", "mean", "sum", "batchmean")


def _softened_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """Per-sample KL(softmax(t/T) ‖ softmax(s/T)), natural log, without the T² factor.

    Inputs are not checked: the public losses check them before calling this.
    """
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits / temperature, dim=1)
    # Σ_c p_t (log p_t − log p_s), written with log-probabilities on both sides so that a
    # teacher probability that underflows to 0 contributes 0 · (finite) = 0, not 0 · (−inf).
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1)


def kd_kl_div(
    student_logits: Tensor,
    teacher_logits: Tensor,
    *,
    temperature: float = 1.0,
    reduction: str = "none",
) -> Tensor:
    """Knowledge-distillation loss KL(softmax(t/T) ‖ softmax(s/T)) · T², per sample.

    The KL divergence is summed over classes (natural log). The T² factor keeps the
    gradient scale independent of the temperature (Hinton et al.). Gradients flow into
    both inputs; detach the teacher's logits when only the student is trained.

    Args:
        student_logits: ``(B, K)`` logits of the student.
        teacher_logits: ``(B, K)`` logits of the teacher.
        temperature: T > 0 (Fast-DFKD uses 20 on CIFAR, DeepInversion 3).
        reduction: ``"none"`` → ``(B,)``; ``"mean"`` or ``"batchmean"`` (the same here:
            the per-sample values are already summed over classes) → mean over the batch;
            ``"sum"`` → sum over the batch.

    Returns:
        ``(B,)`` or a scalar, ≥ 0.

    Raises:
        TypeError: A logit tensor is not a floating-point tensor or ``temperature`` is not
            a number.
        ValueError: Wrong shapes, non-positive temperature or unknown reduction.

    Examples:
        >>> import torch
        >>> s = torch.tensor([[0.0, 0.0]])
        >>> t = torch.tensor([[0.0, 2.0]])
        >>> kd_kl_div(s, s)
        tensor([0.])
        >>> kd_kl_div(s, t, temperature=2.0)  # 2² · KL([0.269, 0.731] ‖ [0.5, 0.5])
        tensor([0.4438])
    """
    student, teacher = check_logit_pair(student_logits, teacher_logits)
    t = check_number("temperature", temperature, minimum=0.0, inclusive=False)
    reduction = check_reduction(reduction, KL_REDUCTIONS)
    return reduce_batch(_softened_kl(student, teacher, t) * (t * t), reduction)


class KDLoss(nn.Module):
    """Module twin of :func:`kd_kl_div`.

    Args:
        temperature: T > 0.
        reduction: ``"none"``, ``"mean"``, ``"batchmean"`` or ``"sum"`` over the batch.

    Examples:
        >>> import torch
        >>> loss = KDLoss(temperature=2.0, reduction="mean")
        >>> loss(torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 2.0]]))
        tensor(0.4438)
    """

    def __init__(self, temperature: float = 1.0, reduction: str = "none") -> None:
        super().__init__()
        self.temperature = check_number("temperature", temperature, minimum=0.0, inclusive=False)
        self.reduction = check_reduction(reduction, KL_REDUCTIONS)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        """See :func:`kd_kl_div`."""
        return kd_kl_div(
            student_logits,
            teacher_logits,
            temperature=self.temperature,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, reduction={self.reduction!r}"

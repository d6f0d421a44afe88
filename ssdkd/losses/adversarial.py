"""Adversarial terms for the generator: reward samples on which the student disagrees.

Each returns a per-sample loss that the *generator* minimises; a low value means the
student imitates the teacher badly on that sample. Gradients flow into both logit tensors
(the generator reaches the images through both networks).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssdkd.losses._checks import check_logit_pair, check_number, check_reduction, reduce_batch
from ssdkd.losses.kd import KL_REDUCTIONS, _softened_kl

__all__ = [
    "AdversarialKLLoss",
    "JSCompetitionLoss",
    "LogitL1Loss",
    "adversarial_kl",
    "js_competition",
    "logit_l1",
]


def adversarial_kl(
    student_logits: Tensor,
    teacher_logits: Tensor,
    *,
    temperature: float = 1.0,
    reduction: str = "none",
) -> Tensor:
    """Fast-DFKD's adversarial loss: −KL(p_t ‖ p_s) where teacher and student agree.

    loss_i = −𝟙[argmax s_i = argmax t_i] · KL(softmax(t_i/T) ‖ softmax(s_i/T)) · T²

    i.e. the negative of :func:`kd_kl_div`, masked. The mask keeps the generator from
    chasing samples the student already gets wrong (which would drift away from the
    teacher's classes); masked samples contribute 0 and still count in the ``"mean"``.
    At the default T = 1 the value is exactly −KL(p_t ‖ p_s). Ties in the argmax resolve
    to the first maximal class.

    Args:
        student_logits: ``(B, K)`` logits of the student.
        teacher_logits: ``(B, K)`` logits of the teacher.
        temperature: T > 0.
        reduction: ``"none"`` → ``(B,)``; ``"mean"``/``"batchmean"`` → mean over the
            batch; ``"sum"``.

    Returns:
        ``(B,)`` or a scalar, ≤ 0.

    Raises:
        TypeError: A logit tensor is not floating point, or ``temperature`` not a number.
        ValueError: Wrong shapes, non-positive temperature or unknown reduction.

    Examples:
        >>> s = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
        >>> t = torch.tensor([[0.0, 3.0], [0.0, 3.0]])
        >>> adversarial_kl(s, t)  # the second sample disagrees and is masked
        tensor([-0.1698,  0.0000])
    """
    student, teacher = check_logit_pair(student_logits, teacher_logits)
    t = check_number("temperature", temperature, minimum=0.0, inclusive=False)
    reduction = check_reduction(reduction, KL_REDUCTIONS)
    agree = student.argmax(dim=1) == teacher.argmax(dim=1)
    negative_kl = _softened_kl(student, teacher, t) * (-t * t)
    # `where` rather than a multiplication by the mask, so masked samples are +0, not −0.
    per_sample = torch.where(agree, negative_kl, torch.zeros_like(negative_kl))
    return reduce_batch(per_sample, reduction)


def js_competition(
    student_logits: Tensor,
    teacher_logits: Tensor,
    *,
    temperature: float = 3.0,
    reduction: str = "none",
) -> Tensor:
    """DeepInversion's competition term ("ADI"): 1 − JS(p_s, p_t), per sample.

    With p_s = softmax(s/T), p_t = softmax(t/T) and their midpoint M = (p_s + p_t)/2,

        JS(p_s, p_t) = ½ KL(p_s ‖ M) + ½ KL(p_t ‖ M)   (natural log, summed over classes),

    which lies in [0, ln 2], so the loss lies in [1 − ln 2, 1] ≈ [0.307, 1]: it is 1 where
    the two distributions coincide and smaller the more they differ.

    Args:
        student_logits: ``(B, K)`` logits of the student.
        teacher_logits: ``(B, K)`` logits of the teacher.
        temperature: T > 0 (DeepInversion uses 3).
        reduction: ``"none"`` → ``(B,)``, ``"mean"`` or ``"sum"`` over the batch.

    Returns:
        ``(B,)`` or a scalar.

    Raises:
        TypeError: A logit tensor is not floating point, or ``temperature`` not a number.
        ValueError: Wrong shapes, non-positive temperature or unknown reduction.

    Examples:
        >>> s = torch.tensor([[0.0, 0.0], [-100.0, 100.0]])
        >>> t = torch.tensor([[0.0, 0.0], [100.0, -100.0]])
        >>> js_competition(s, t, temperature=1.0)  # equal, then disjoint: 1 − ln 2
        tensor([1.0000, 0.3069])
    """
    student, teacher = check_logit_pair(student_logits, teacher_logits)
    t = check_number("temperature", temperature, minimum=0.0, inclusive=False)
    reduction = check_reduction(reduction)
    log_p_s = F.log_softmax(student / t, dim=1)
    log_p_t = F.log_softmax(teacher / t, dim=1)
    # log M = log((p_s + p_t)/2), computed from the log-probabilities so that classes
    # where one distribution underflows keep a finite log M.
    log_m = torch.logaddexp(log_p_s, log_p_t) - math.log(2.0)
    kl_s = (log_p_s.exp() * (log_p_s - log_m)).sum(dim=1)
    kl_t = (log_p_t.exp() * (log_p_t - log_m)).sum(dim=1)
    return reduce_batch(1.0 - 0.5 * (kl_s + kl_t), reduction)


def logit_l1(student_logits: Tensor, teacher_logits: Tensor, reduction: str = "none") -> Tensor:
    """DFAD's adversarial discrepancy: mean absolute difference of the logits, per sample.

    loss_i = (1/K) Σ_c |s_ic − t_ic|.  The generator *maximises* this discrepancy, so it
    minimises the negative: use ``-logit_l1(...)`` as its loss (the student minimises it).
    With ``reduction="mean"`` the value equals ``F.l1_loss(s, t)``.

    Args:
        student_logits: ``(B, K)`` logits of the student.
        teacher_logits: ``(B, K)`` logits of the teacher.
        reduction: ``"none"`` → ``(B,)``, ``"mean"`` or ``"sum"`` over the batch.

    Returns:
        ``(B,)`` or a scalar, ≥ 0.

    Raises:
        TypeError: A logit tensor is not floating point.
        ValueError: Wrong shapes or unknown reduction.

    Examples:
        >>> logit_l1(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 5.0]]))
        tensor([2.])
    """
    student, teacher = check_logit_pair(student_logits, teacher_logits)
    reduction = check_reduction(reduction)
    return reduce_batch((student - teacher).abs().mean(dim=1), reduction)


class AdversarialKLLoss(nn.Module):
    """Module twin of :func:`adversarial_kl`.

    Examples:
        >>> loss = AdversarialKLLoss(reduction="sum")
        >>> loss(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, 3.0]]))
        tensor(-0.1698)
    """

    def __init__(self, temperature: float = 1.0, reduction: str = "none") -> None:
        super().__init__()
        self.temperature = check_number("temperature", temperature, minimum=0.0, inclusive=False)
        self.reduction = check_reduction(reduction, KL_REDUCTIONS)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        """See :func:`adversarial_kl`."""
        return adversarial_kl(
            student_logits,
            teacher_logits,
            temperature=self.temperature,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, reduction={self.reduction!r}"


class JSCompetitionLoss(nn.Module):
    """Module twin of :func:`js_competition`.

    Examples:
        >>> JSCompetitionLoss()(torch.zeros(2, 3), torch.zeros(2, 3))
        tensor([1., 1.])
    """

    def __init__(self, temperature: float = 3.0, reduction: str = "none") -> None:
        super().__init__()
        self.temperature = check_number("temperature", temperature, minimum=0.0, inclusive=False)
        self.reduction = check_reduction(reduction)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        """See :func:`js_competition`."""
        return js_competition(
            student_logits,
            teacher_logits,
            temperature=self.temperature,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, reduction={self.reduction!r}"


class LogitL1Loss(nn.Module):
    """Module twin of :func:`logit_l1`.

    Examples:
        >>> LogitL1Loss(reduction="mean")(torch.ones(2, 2), torch.zeros(2, 2))
        tensor(1.)
    """

    def __init__(self, reduction: str = "none") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        """See :func:`logit_l1`."""
        return logit_l1(student_logits, teacher_logits, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"

"""Argument checks shared by the losses (shape and type checks never read device values)."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "Reduction",
    "check_float_tensor",
    "check_logit_pair",
    "check_logits",
    "check_number",
    "check_reduction",
    "check_same_batch",
    "has_nan",
    "reduce_batch",
]

Reduction = Literal["none", "mean", "sum"]


def check_float_tensor(name: str, value: object) -> Tensor:
    """``value`` must be a floating-point tensor."""
    if not isinstance(value, Tensor):
        raise TypeError(f"Expected `{name}` to be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"Expected `{name}` to be a floating-point tensor, got dtype {value.dtype}")
    return value


def check_logits(name: str, value: object) -> Tensor:
    """``value`` must be a ``(B, K)`` floating-point tensor with B ≥ 1 and K ≥ 1."""
    logits = check_float_tensor(name, value)
    if logits.dim() != 2:
        raise ValueError(
            f"Expected `{name}` to have shape (B, K), got {logits.dim()} dimensions "
            f"{tuple(logits.shape)}"
        )
    if logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ValueError(
            f"Expected `{name}` to hold at least one sample and one class, got shape "
            f"{tuple(logits.shape)}"
        )
    return logits


def check_logit_pair(student_logits: object, teacher_logits: object) -> tuple[Tensor, Tensor]:
    """Both logit tensors must be ``(B, K)`` with the same shape."""
    student = check_logits("student_logits", student_logits)
    teacher = check_logits("teacher_logits", teacher_logits)
    if student.shape != teacher.shape:
        raise ValueError(
            f"Expected `student_logits` and `teacher_logits` to have the same shape (B, K), "
            f"got {tuple(student.shape)} and {tuple(teacher.shape)}"
        )
    return student, teacher


def check_same_batch(name: str, value: Tensor, batch: int) -> None:
    """``value`` must have shape ``(batch,)``."""
    if value.dim() != 1 or value.shape[0] != batch:
        raise ValueError(
            f"Expected `{name}` to have shape ({batch},) (one value per sample), got "
            f"{tuple(value.shape)}"
        )


def check_number(
    name: str, value: object, *, minimum: float, inclusive: bool, maximum: float = math.inf
) -> float:
    """``value`` must be a real, finite number in the given range; returns it as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Expected `{name}` to be a number, got {type(value).__name__}")
    number = float(value)
    low_ok = number >= minimum if inclusive else number > minimum
    if not (math.isfinite(number) and low_ok and number < maximum):
        bound = ">=" if inclusive else ">"
        high = f" and < {maximum}" if math.isfinite(maximum) else ""
        raise ValueError(f"Expected `{name}` to be finite, {bound} {minimum}{high}, got {value!r}")
    return number


def check_reduction(reduction: object, allowed: tuple[str, ...] = ("none", "mean", "sum")) -> str:
    """``reduction`` must be one of ``allowed``."""
    if not isinstance(reduction, str) or reduction not in allowed:
        raise ValueError(f"Expected `reduction` to be one of {allowed}, got {reduction!r}")
    return reduction


def reduce_batch(values: Tensor, reduction: str) -> Tensor:
    """Apply an already checked reduction to per-sample values ``(B,)``.

    ``"batchmean"`` (the name torch's KL divergence uses for "sum over classes, mean over
    the batch") equals ``"mean"`` here, because the values are already summed over classes.
    """
    if reduction == "none":
        return values
    if reduction == "sum":
        return values.sum()
    return values.mean()


def has_nan(value: Tensor) -> bool:
    """Whether ``value`` holds a NaN (reads one flag back from the device)."""
    return bool(torch.isnan(value).any())

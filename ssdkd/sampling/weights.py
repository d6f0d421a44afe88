"""The probability and importance-weight math of prioritized sampling, as pure functions.

With raw priorities ``p_i``, leaves ``l_i = (p_i + ε)^α`` and ``P(i) = l_i / Σ_j l_j``.

Each function works on float64 torch tensors and numpy arrays alike (one formula; the
sampler runs it on numpy views on CPU). torch and numpy may round ``pow`` differently by
an ulp, which the tests allow for.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

__all__ = ["importance_weights", "priority_leaves", "sampling_probabilities"]

ArrayT = TypeVar("ArrayT", Tensor, np.ndarray)

_TINY = float(np.finfo(np.float64).tiny)


def _float64(values: ArrayT) -> ArrayT:
    if isinstance(values, Tensor) and values.dtype != torch.float64:
        return values.to(torch.float64)
    return values


def priority_leaves(raw: ArrayT, alpha: float, eps: float) -> ArrayT:
    """Tree leaves from raw priorities: ``(raw + ε)^α``, applied exactly once.

    Args:
        raw: ``(N,)`` non-negative raw priorities (a tensor is cast to float64).
        alpha: Prioritisation exponent α ≥ 0 (α = 0: uniform).
        eps: Offset ε > 0 that keeps every leaf positive.

    Returns:
        ``(N,)`` float64 leaves, of the input's kind.

    Examples:
        >>> priority_leaves(torch.tensor([0.0, 3.0], dtype=torch.float64), 0.5, 1.0)
        tensor([1., 2.], dtype=torch.float64)
    """
    return (_float64(raw) + eps) ** alpha


def sampling_probabilities(leaves: ArrayT, total: Tensor | float) -> ArrayT:
    """``P(i) = leaf_i / total``.

    Args:
        leaves: ``(B,)`` leaves of the drawn (or all) items.
        total: Sum of all leaves (a 0-dim tensor keeps this sync-free).

    Returns:
        ``(B,)`` float64 probabilities.

    Examples:
        >>> sampling_probabilities(torch.tensor([1.0, 3.0], dtype=torch.float64), 4.0)
        tensor([0.2500, 0.7500], dtype=torch.float64)
    """
    return _float64(leaves) / total


def importance_weights(leaves: ArrayT, min_leaf: Tensor | float, beta: float) -> ArrayT:
    """Importance-sampling weights normalised by their maximum, in ``(0, 1]``.

    The unnormalised weight of item i among N is ``(N · P(i))^(−β)``. It is largest for the
    item with the smallest leaf, so dividing by the maximum gives
    ``(N · l_i / L)^(−β) / (N · l_min / L)^(−β) = (l_i / l_min)^(−β)``: N and the total L
    cancel, and ``l_i ≥ l_min`` keeps every weight ≤ 1. Pass the minimum over all live
    leaves for the usual buffer-wide normalisation, or the batch minimum for per-batch
    normalisation. Weights that would underflow to 0 are clamped to the smallest positive
    float64 so they stay in (0, 1].

    Args:
        leaves: ``(B,)`` leaves of the drawn items.
        min_leaf: The normaliser's minimum leaf (> 0), a 0-dim value or float.
        beta: Correction exponent β ≥ 0 (β = 0: all ones).

    Returns:
        ``(B,)`` float64 weights, of the input's kind.

    Examples:
        >>> importance_weights(torch.tensor([1.0, 4.0], dtype=torch.float64), 1.0, 0.5)
        tensor([1.0000, 0.5000], dtype=torch.float64)
    """
    weights = (_float64(leaves) / min_leaf) ** -beta
    if isinstance(weights, np.ndarray):
        # Two ufuncs in place: numpy's ``clip`` costs several µs of Python on small arrays.
        return np.minimum(np.maximum(weights, _TINY, out=weights), 1.0, out=weights)
    return weights.clamp_(_TINY, 1.0)

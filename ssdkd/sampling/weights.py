"""The probability and importance-weight math of prioritized sampling, as pure functions.

With raw priorities ``p_i``, leaves ``l_i = (p_i + ε)^α`` and ``P(i) = l_i / Σ_j l_j``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["importance_weights", "priority_leaves", "sampling_probabilities"]


def priority_leaves(raw: Tensor, alpha: float, eps: float) -> Tensor:
    """Tree leaves from raw priorities: ``(raw + ε)^α``, applied exactly once.

    Args:
        raw: ``(N,)`` non-negative raw priorities.
        alpha: Prioritisation exponent α ≥ 0 (α = 0: uniform).
        eps: Offset ε > 0 that keeps every leaf positive.

    Returns:
        ``(N,)`` float64 leaves.

    Example:
        >>> priority_leaves(torch.tensor([0.0, 3.0], dtype=torch.float64), 0.5, 1.0)
        tensor([1., 2.], dtype=torch.float64)
    """
    return torch.pow(raw.to(torch.float64) + eps, alpha)


def priority_leaves_host(raw: np.ndarray, alpha: float, eps: float) -> np.ndarray:
    """numpy twin of :func:`priority_leaves` for the CPU fast path (same formula).

    Example:
        >>> priority_leaves_host(np.array([0.0, 3.0]), 0.5, 1.0)
        array([1., 2.])
    """
    return np.power(raw + eps, alpha)


def sampling_probabilities(leaves: Tensor, total: Tensor | float) -> Tensor:
    """``P(i) = leaf_i / total``.

    Args:
        leaves: ``(B,)`` leaves of the drawn (or all) items.
        total: Sum of all leaves (a 0-dim tensor keeps this sync-free).

    Returns:
        ``(B,)`` float64 probabilities.

    Example:
        >>> sampling_probabilities(torch.tensor([1.0, 3.0], dtype=torch.float64), 4.0)
        tensor([0.2500, 0.7500], dtype=torch.float64)
    """
    return leaves.to(torch.float64) / total


def importance_weights(leaves: Tensor, min_leaf: Tensor | float, beta: float) -> Tensor:
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
        min_leaf: The normaliser's minimum leaf (> 0), a 0-dim tensor or float.
        beta: Correction exponent β ≥ 0 (β = 0: all ones).

    Returns:
        ``(B,)`` float64 weights.

    Example:
        >>> importance_weights(torch.tensor([1.0, 4.0], dtype=torch.float64), 1.0, 0.5)
        tensor([1.0000, 0.5000], dtype=torch.float64)
    """
    ratio = leaves.to(torch.float64) / min_leaf
    return torch.pow(ratio, -beta).clamp_(min=torch.finfo(torch.float64).tiny, max=1.0)


def importance_weights_host(leaves: np.ndarray, min_leaf: float, beta: float) -> np.ndarray:
    """numpy twin of :func:`importance_weights` for the CPU fast path (same formula).

    Example:
        >>> importance_weights_host(np.array([1.0, 4.0]), 1.0, 0.5)
        array([1. , 0.5])
    """
    weights = np.power(leaves / min_leaf, -beta)
    np.maximum(weights, np.finfo(np.float64).tiny, out=weights)
    return np.minimum(weights, 1.0, out=weights)

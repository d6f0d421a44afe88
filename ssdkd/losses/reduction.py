"""The one place where per-sample losses meet per-sample weights."""

from __future__ import annotations

from torch import Tensor

from ssdkd.losses._checks import check_float_tensor, check_same_batch

__all__ = ["weighted_mean"]


def weighted_mean(values: Tensor, *weights: Tensor) -> Tensor:
    """Mean over the batch of per-sample values times per-sample weights.

    weighted_mean(v, w¹, …, wᵏ) = (1/B) Σ_i v_i · w¹_i · … · wᵏ_i

    This is where the SSD-KD modulation φ meets the task loss and where prioritized
    replay's importance weights meet the KD loss. The sum is divided by the batch size B,
    **not** by the sum of the weights: that is how prioritized experience replay applies
    its importance weights (a weight then scales the sample's gradient by itself). The
    weights' scale is therefore the caller's: SSD-KD normalises its importance weights to
    mean 1 per batch (``weight_norm="mean"``) and φ to mean 1 (``phi_normalization=
    "weights"``), so that the weighted loss keeps the plain mean's scale; weights
    normalised by a maximum (``weight_norm="max"``, φ with ``"batch"``) lie in [0, 1] and
    shrink it. Weights are used as given:
    pass detached weights (as :func:`~ssdkd.losses.diversity_difficulty_weights` returns)
    unless gradients through them are wanted.

    Args:
        values: ``(B,)`` per-sample losses (a ``reduction="none"`` output).
        *weights: Any number of ``(B,)`` per-sample weights; with none this is the plain
            mean.

    Returns:
        A scalar tensor.

    Raises:
        TypeError: An argument is not a floating-point tensor.
        ValueError: ``values`` is not ``(B,)`` with B ≥ 1, or a weight is not ``(B,)``.

    Examples:
        >>> import torch
        >>> weighted_mean(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 0.5]))
        tensor(1.)
        >>> weighted_mean(torch.tensor([1.0, 3.0]))
        tensor(2.)
    """
    values = check_float_tensor("values", values)
    if values.dim() != 1 or values.shape[0] == 0:
        raise ValueError(
            f"Expected `values` to have shape (B,) with B >= 1 (per-sample losses), got "
            f"{tuple(values.shape)}"
        )
    batch = values.shape[0]
    product = values
    for j, weight in enumerate(weights):
        name = f"weights[{j}]"
        check_same_batch(name, check_float_tensor(name, weight), batch)
        product = product * weight
    return product.mean()

"""Global reductions for prioritized sampling across ``torch.distributed`` ranks.

In a data-parallel loop every rank draws its own share of the KD batch from its own
:class:`~ssdkd.sampling.PriorityBuffer` (a shard of the global buffer). Two quantities
must then be global rather than per rank:

* the class histogram that SSD-KD's φ balances (:func:`global_class_counts`): each shard
  sees only its own images;
* the ``"mean"`` importance-weight normalisation (:func:`global_mean_normalized`): the
  weights of the *global* batch have mean 1, so the weighted loss, averaged by DDP over the
  ranks, equals the single-process weighted loss of the same global batch.

Without an initialised default process group (or with one rank) every function returns
its input's single-process value, so the same code runs in one process and under
``torchrun``.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["all_reduce_sum", "global_class_counts", "global_mean_normalized"]


def _active(group: dist.ProcessGroup | None) -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size(group) > 1


def all_reduce_sum(tensor: Tensor, group: dist.ProcessGroup | None = None) -> Tensor:
    """The element-wise sum of ``tensor`` over the ranks of ``group``, as a new tensor.

    Args:
        tensor: The same shape and dtype on every rank.
        group: The process group (default: the default group).

    Returns:
        The sum (a copy of ``tensor`` without an initialised group of more than one rank).

    Examples:
        >>> all_reduce_sum(torch.tensor([1, 2]))  # one process
        tensor([1, 2])
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"Expected `tensor` to be a torch.Tensor, got {type(tensor).__name__}")
    total = tensor.detach().clone()
    if _active(group):
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
    return total


def global_class_counts(counts: Tensor, group: dist.ProcessGroup | None = None) -> Tensor:
    """A class histogram summed over the ranks (e.g. of every rank's buffer shard).

    Args:
        counts: ``(num_classes,)`` integer counts of this rank.
        group: The process group (default: the default group).

    Returns:
        ``(num_classes,)`` global counts, same dtype.

    Raises:
        ValueError: ``counts`` is not a 1-D integer tensor.

    Examples:
        >>> global_class_counts(torch.tensor([3, 0, 1]))  # one process
        tensor([3, 0, 1])
    """
    if not isinstance(counts, Tensor):
        raise TypeError(f"Expected `counts` to be a torch.Tensor, got {type(counts).__name__}")
    if counts.dim() != 1 or counts.dtype.is_floating_point or counts.dtype == torch.bool:
        raise ValueError(
            "Expected `counts` to be a 1-D integer tensor, got dtype "
            f"{counts.dtype} and shape {tuple(counts.shape)}"
        )
    return all_reduce_sum(counts, group)


def global_mean_normalized(weights: Tensor, group: dist.ProcessGroup | None = None) -> Tensor:
    """Importance weights rescaled so that the *global* batch's weights have mean 1.

    Each rank passes its share's weights on a scale common to all ranks, such as
    ``P(i)^(−β)`` with ``P(i)`` the draw's probability (per-rank normalised weights, e.g.
    ``"max"``, are on different scales and give wrong results); the result is
    ``w / (Σ_ranks Σ w / Σ_ranks B)``. In one process this is ``w / w.mean()``, the
    ``"mean"`` normalisation of :class:`~ssdkd.sampling.PrioritySampler`. With equal
    shares ``B`` on every rank, the mean over ranks of each rank's mean weighted loss is
    the global batch's mean weighted loss (with unequal shares, scale rank r's loss by
    ``B_r · N / Σ B``).

    Args:
        weights: ``(B,)`` positive floating weights of this rank.
        group: The process group (default: the default group).

    Returns:
        ``(B,)`` weights, same dtype.

    Raises:
        ValueError: ``weights`` is not a non-empty 1-D floating tensor.

    Examples:
        >>> global_mean_normalized(torch.tensor([1.0, 3.0]))  # one process
        tensor([0.5000, 1.5000])
    """
    if not isinstance(weights, Tensor):
        raise TypeError(f"Expected `weights` to be a torch.Tensor, got {type(weights).__name__}")
    if weights.dim() != 1 or not weights.dtype.is_floating_point or weights.numel() == 0:
        raise ValueError(
            "Expected `weights` to be a non-empty 1-D floating tensor, got dtype "
            f"{weights.dtype} and shape {tuple(weights.shape)}"
        )
    local = weights.detach().sum(dtype=torch.float64)
    stats = torch.stack([local, torch.full_like(local, float(weights.numel()))])
    stats = all_reduce_sum(stats, group)
    return weights / (stats[0] / stats[1]).to(weights.dtype)

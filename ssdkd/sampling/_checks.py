"""Argument checks and the last-write-wins resolution shared by the sampling components."""

from __future__ import annotations

import torch
from torch import Tensor

from ssdkd.sampling._backend import Array, ArrayOps


def check_index_tensor(name: str, indices: object, bound: int, device: torch.device) -> Tensor:
    """Return ``indices`` as int64 on ``device`` after checking it is ``(B,)`` in ``[0, bound)``.

    The range check reads values on the host (a sync on CUDA).
    """
    indices = check_index_shape(name, indices, device)
    if indices.numel():
        bad = (indices < 0) | (indices >= bound)
        if bool(bad.any()):
            first = int(bad.nonzero()[0, 0])
            raise IndexError(
                f"Expected `{name}` in [0, {bound}), got {int(indices[first])} at position {first}"
            )
    return indices


def check_slots(slots: object, bound: int, device: torch.device, *, validate: bool) -> Tensor:
    """``slots`` as int64 on ``device``: ``(n,)``, and with ``validate`` distinct and in
    ``[0, bound)`` (a host read; a sync on CUDA)."""
    if not validate:
        return check_index_shape("slots", slots, device)
    checked = check_index_tensor("slots", slots, bound, device)
    if checked.numel() != torch.unique(checked).numel():
        raise ValueError(f"Expected `slots` to be distinct, got {checked.tolist()}")
    return checked


def check_index_shape(name: str, indices: object, device: torch.device) -> Tensor:
    """Type and shape check of an index tensor (host metadata only, no sync)."""
    if not isinstance(indices, Tensor):
        raise TypeError(f"Expected `{name}` to be a torch.Tensor, got {type(indices).__name__}")
    if indices.dtype.is_floating_point or indices.dtype.is_complex or indices.dtype == torch.bool:
        raise TypeError(f"Expected `{name}` to be an integer tensor, got dtype {indices.dtype}")
    if indices.dim() != 1:
        raise ValueError(f"Expected `{name}` to have shape (B,), got {tuple(indices.shape)}")
    if indices.dtype == torch.int64 and indices.device == device:
        return indices  # skipping the no-op .to() saves microseconds on every hot call
    return indices.to(device=device, dtype=torch.int64)


def check_mask(name: str, mask: object, n: int, device: torch.device) -> Tensor:
    """Type and shape check of a ``(n,)`` bool tensor; returns it on ``device``."""
    if not isinstance(mask, Tensor):
        raise TypeError(f"Expected `{name}` to be a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(f"Expected `{name}` to be a bool tensor, got dtype {mask.dtype}")
    if tuple(mask.shape) != (n,):
        raise ValueError(f"Expected `{name}` to have shape ({n},), got {tuple(mask.shape)}")
    return mask if mask.device == device else mask.to(device)


def check_priority_shape(name: str, values: object, n: int, device: torch.device) -> Tensor:
    """Type and shape check of a priority vector; returns detached float64 on ``device``."""
    if not isinstance(values, Tensor):
        raise TypeError(f"Expected `{name}` to be a torch.Tensor, got {type(values).__name__}")
    if values.dtype == torch.bool or values.dtype.is_complex:
        raise TypeError(f"Expected `{name}` to be a real tensor, got dtype {values.dtype}")
    if tuple(values.shape) != (n,):
        raise ValueError(f"Expected `{name}` to have shape ({n},), got {tuple(values.shape)}")
    values = values.detach()
    if values.dtype == torch.float64 and values.device == device:
        return values
    return values.to(device=device, dtype=torch.float64)


def check_priority_values(name: str, values: object, n: int, device: torch.device) -> Tensor:
    """:func:`check_priority_shape` plus finite and non-negative (a sync on CUDA)."""
    values = check_priority_shape(name, values, n, device)
    # NaN fails both comparisons, so one mask catches NaN, ±inf and negatives.
    bad = ~((values >= 0) & (values < float("inf")))
    if n and bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"Expected `{name}` to be finite and >= 0, got {values[first].item()!r} "
            f"at position {first}"
        )
    return values


def check_fields(
    fields: dict[str, Tensor], stored_fields: dict[str, Tensor], capacity: int, method: str
) -> int:
    """Check named fields against the stored schema (metadata only); return their row count."""
    if not fields:
        raise ValueError(f"Expected at least one named tensor field in `{method}`, got none")
    for name, value in fields.items():
        if not isinstance(value, Tensor):
            raise TypeError(
                f"Expected field {name!r} to be a torch.Tensor, got {type(value).__name__}"
            )
        if value.dim() == 0:
            raise ValueError(f"Expected field {name!r} to have a leading batch dimension")
    if stored_fields and set(fields) != set(stored_fields):
        raise ValueError(
            f"Expected fields {sorted(stored_fields)}, got {sorted(fields)} "
            f"(missing {sorted(set(stored_fields) - set(fields))}, "
            f"extra {sorted(set(fields) - set(stored_fields))})"
        )
    sizes = {name: value.shape[0] for name, value in fields.items()}
    n = next(iter(sizes.values()))
    if any(size != n for size in sizes.values()):
        raise ValueError(f"Expected every field to have the same leading size, got {sizes}")
    if n > capacity:
        raise ValueError(f"Expected at most capacity={capacity} items, got {n}")
    for name, value in fields.items():
        stored = stored_fields.get(name)
        if stored is None:
            continue
        if value.shape[1:] != stored.shape[1:]:
            raise ValueError(
                f"Expected field {name!r} items of shape {tuple(stored.shape[1:])}, "
                f"got {tuple(value.shape[1:])}"
            )
        if value.dtype != stored.dtype:
            raise TypeError(f"Expected field {name!r} of dtype {stored.dtype}, got {value.dtype}")
    return n


def last_write_positions(ops: ArrayOps, indices: Array, valid: Array | None = None) -> Array:
    """For each position, the position of the write that wins for its index.

    The winner of an index is its last *valid* write, or its last write when none is valid.
    Giving every duplicate the winner's value makes scattered writes order-independent,
    which is what deterministic results on every device need. No host sync on devices.

    Args:
        ops: The backend of the arrays.
        indices: ``(B,)`` int64.
        valid: Optional ``(B,)`` bool; invalid writes lose to any valid write.

    Returns:
        ``(B,)`` int64 positions into ``indices``.
    """
    b = indices.shape[0]
    # One sort orders by index, then invalid before valid, then by position; the
    # last element of each run of equal indices is therefore the winner.
    key = indices * (2 * b) + ops.arange(b)
    if valid is not None:
        key = key + valid * b
    if ops.may_sync and bool((key[1:] > key[:-1]).all()):
        # Already ordered (indices straight from a sample are sorted): no sort needed.
        return ops.searchsorted_right(indices, indices) - 1
    order = ops.argsort(key)
    sorted_index = ops.take(key, order) // (2 * b)
    run_last = ops.searchsorted_right(sorted_index, sorted_index) - 1
    return ops.scatter(order, ops.take(order, run_last))

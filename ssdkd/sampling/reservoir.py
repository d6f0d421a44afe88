"""Reservoir refresh of a fixed-size buffer: keep a uniform sample of a whole stream."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["reservoir_slots"]


def reservoir_slots(
    first_index: int,
    count: int,
    capacity: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """Which items of a new batch enter a full buffer, and where (Vitter's Algorithm R).

    Item ``t`` of the stream (0-based, counting every item ever offered) replaces a
    uniformly drawn slot with probability ``capacity / (t + 1)``; after any number of
    batches every item offered so far is in the buffer with the same probability
    ``capacity / n``. Within a batch, a slot drawn twice keeps the later item, as the
    sequential algorithm would.

    Args:
        first_index: Stream index of the batch's first item, ``>= capacity`` (the buffer
            is full before this batch: fill free slots first).
        count: Items in the batch, ``>= 0``.
        capacity: Buffer capacity, ``>= 1``.
        generator: Random source (``None``: the global generator); its device is used
            for the draws.
        device: Device of the returned tensors (default: the generator's, else CPU).

    Returns:
        ``(rows, slots)``: int64 tensors of equal length, the batch rows to write (in
        increasing order) and their distinct buffer slots. One host read per call (how
        many rows enter).

    Raises:
        TypeError: A count, index or capacity is not an ``int``.
        ValueError: A count or index is negative, ``capacity < 1``, or
            ``first_index < capacity``.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> rows, slots = reservoir_slots(100, 50, 100, generator=g)
        >>> bool(len(rows) == len(slots) == len(torch.unique(slots)))
        True
    """
    for name, value in (("first_index", first_index), ("count", count), ("capacity", capacity)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"Expected `{name}` to be an int, got {value!r}")
        if value < 0:
            raise ValueError(f"Expected `{name}` to be >= 0, got {value}")
    if capacity < 1:
        raise ValueError(f"Expected `capacity` to be >= 1, got {capacity}")
    if first_index < capacity:
        raise ValueError(
            f"Expected `first_index` >= `capacity` ({capacity}): fill the free slots first, "
            f"got {first_index}"
        )
    source = generator.device if generator is not None else torch.device("cpu")
    out = torch.device(device) if device is not None else source
    index = torch.arange(count, device=source, dtype=torch.float64) + first_index
    draw = torch.rand(count, generator=generator, device=source, dtype=torch.float64)
    # floor(u · (t + 1)) is uniform on {0, ..., t}: below capacity with probability C/(t+1).
    slot = (draw * (index + 1)).floor().to(torch.int64)
    rows = torch.arange(count, device=source)
    # Items that do not enter go to an extra bin ``capacity``; a slot drawn twice keeps
    # the batch's later item.
    slot = slot.clamp_max(capacity)
    last = torch.full((capacity + 1,), -1, dtype=torch.int64, device=source)
    last.scatter_reduce_(0, slot, rows, reduce="amax")
    enter = ((slot < capacity) & (last[slot] == rows)).nonzero().squeeze(1)
    return rows.index_select(0, enter).to(out), slot.index_select(0, enter).to(out)

"""How a full buffer takes in a new batch: which stored entries the batch replaces."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import torch
from torch import Tensor

from ssdkd.sampling.buffer import PriorityBuffer
from ssdkd.sampling.reservoir import reservoir_slots

__all__ = ["REFRESH_POLICIES", "RefreshPolicy", "admit"]

RefreshPolicy = Literal["fifo", "reservoir", "lowest-score"]
"""How a full buffer admits new items: see :func:`admit`."""
REFRESH_POLICIES: tuple[str, ...] = get_args(RefreshPolicy)
"""The names :func:`admit` accepts as ``policy``."""


def admit(
    buffer: PriorityBuffer,
    fields: dict[str, Tensor],
    *,
    policy: str = "fifo",
    offered_before: int = 0,
    generator: torch.Generator | None = None,
    scores: Callable[[], Tensor] | None = None,
) -> None:
    """Add a batch to ``buffer``: fill its free slots, then replace stored entries.

    New entries get the buffer's current maximum priority. Once the buffer is full the
    rest of the batch replaces

    - ``"fifo"``: the oldest entries (the buffer is a window of the latest batches);
    - ``"reservoir"``: random entries such that the buffer stays a uniform sample of
      every item offered so far (:func:`~ssdkd.sampling.reservoir_slots`; the t-th item
      enters with probability capacity / t);
    - ``"lowest-score"``: the entries with the lowest ``scores()`` (e.g. SSD-KD's φ of the
      stored images), never an entry this same batch just wrote.

    Args:
        buffer: The buffer to write.
        fields: The batch's named tensors, ``(B, ...)`` each, as ``buffer.extend`` takes.
        policy: One of :data:`REFRESH_POLICIES`.
        offered_before: Items offered to the buffer before this batch (``"reservoir"``).
        generator: The random source of ``"reservoir"``.
        scores: Returns ``(len(buffer),)`` scores of the stored entries, computed after
            the free slots are filled (``"lowest-score"``).

    Raises:
        ValueError: An unknown policy, or a policy without what it needs.

    Examples:
        >>> buffer = PriorityBuffer(4, generator=torch.Generator().manual_seed(0))
        >>> admit(buffer, {"x": torch.tensor([0, 1, 2])})
        >>> admit(buffer, {"x": torch.tensor([3, 4])})  # fills slot 3, replaces slot 0
        >>> buffer.data["x"].tolist()
        [4, 1, 2, 3]
    """
    if policy not in REFRESH_POLICIES:
        raise ValueError(f"Expected `policy` to be one of {REFRESH_POLICIES}, got {policy!r}")
    if policy == "reservoir" and generator is None:
        raise ValueError("Expected a `generator` for policy 'reservoir', got None")
    if policy == "lowest-score" and scores is None:
        raise ValueError("Expected `scores` for policy 'lowest-score', got None")
    count = next(iter(fields.values())).shape[0]
    room = buffer.capacity - len(buffer)
    just_written = None
    if room > 0:
        just_written = buffer.extend(**{k: v[:room] for k, v in fields.items()})
    rest = count - max(room, 0)
    if rest <= 0:
        return
    remaining = {k: v[count - rest :] for k, v in fields.items()}
    if policy == "fifo":
        buffer.extend(**remaining)
        return
    if policy == "reservoir":
        assert generator is not None
        rows, slots = reservoir_slots(
            offered_before + count - rest,
            rest,
            buffer.capacity,
            generator=generator,
            device=buffer.device,
        )
        if rows.numel():
            buffer.replace(slots, **{k: v[rows] for k, v in remaining.items()})
        return
    assert scores is not None
    stored = scores()
    if just_written is not None:
        stored[just_written] = float("inf")  # never evict this batch's own entries
    slots = torch.topk(stored, rest, largest=False, sorted=False).indices
    buffer.replace(slots, **remaining)

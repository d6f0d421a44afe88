"""Binary reduction levels over a vector of leaves, the storage behind :class:`SumTree`.

Layout (shared by every channel): a heap array of length ``2P`` where ``P`` is the capacity
rounded up to a power of two. Leaf ``i`` lives at ``P + i``; node ``k`` has children ``2k``
and ``2k + 1``, so the level of width ``w`` occupies ``[w, 2w)``. Padding the leaves to a
power of two keeps leaf order intact for any capacity (an unpadded heap scrambles it);
padding leaves hold the channel's identity (0 for sums, ±inf for min/max) and never count.

Levels are kept only down to a *flat top* of ``top = min(P, TOP_WIDTH)`` nodes; nothing above
it is stored. Queries reduce the top row directly (a sequential ``cumsum`` of ≤ 8192 values costs
~8 µs on CPU), which removes the thirteen upper levels from every update and every descent.

Every parent is recomputed from its two children (never updated by adding a delta), so the
whole structure is a pure function of the leaves: no drift, and a rebuilt tree is
bit-identical to an incrementally updated one.

On CPU the loops run on numpy views of the same memory as the torch tensors (a numpy call
on 256 elements costs well under a microsecond, a torch call a few); on other devices they
run as torch ops, with no host synchronisation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

TOP_WIDTH = 8192
"""Width of the flat top row; levels above it are never materialised."""

_IDENTITY = {"sum": 0.0, "min": float("inf"), "max": float("-inf")}
_NUMPY_OPS: dict[str, Callable[..., Any]] = {"sum": np.add, "min": np.minimum, "max": np.maximum}
_TORCH_OPS: dict[str, Callable[..., Any]] = {
    "sum": torch.add,
    "min": torch.minimum,
    "max": torch.maximum,
}


class ReductionLevels:
    """Per-channel binary reductions (sum/min/max) of the same leaf values, float64.

    Args:
        capacity: Number of leaves, ≥ 1.
        kinds: One reduction per channel, each ``"sum"``, ``"min"`` or ``"max"``.
        device: Where the heaps live.
    """

    def __init__(self, capacity: int, kinds: Sequence[str], device: torch.device) -> None:
        self.capacity = capacity
        self.kinds = tuple(kinds)
        self.width = 1 << max(0, (capacity - 1).bit_length())
        self.top = min(self.width, TOP_WIDTH)
        self.heaps = [
            torch.full((2 * self.width,), _IDENTITY[k], dtype=torch.float64, device=device)
            for k in self.kinds
        ]
        # numpy views share the tensors' memory, so both names always see the same values.
        self.host = [h.numpy() for h in self.heaps] if device.type == "cpu" else None

    def top_row(self, channel: int) -> Tensor:
        """The flat top row of a channel, shape ``(top,)`` (a view)."""
        return self.heaps[channel][self.top : 2 * self.top]

    def leaves(self, channel: int) -> Tensor:
        """Leaf values of a channel, shape ``(capacity,)`` (a view)."""
        return self.heaps[channel][self.width : self.width + self.capacity]

    def write(self, indices: Tensor, values: Tensor) -> None:
        """Set leaves ``indices`` to ``values`` in every channel and fix their ancestors.

        Duplicate indices must carry identical values (callers resolve last-write-wins
        first), so the order in which a backend applies them cannot matter.
        """
        if self.host is not None:
            self._write_host(indices.numpy(), values.numpy())
        else:
            self._write_device(indices, values)

    def _write_host(self, indices: np.ndarray, values: np.ndarray) -> None:
        g = indices + self.width
        for h in self.host or ():
            h[g] = values
        width = self.width
        while width > self.top:
            width >>= 1
            if g.size >= width:
                # As many paths as nodes: recomputing the whole level (and all above it)
                # with contiguous slices is cheaper than gathering.
                self._recompute_levels(2 * width, 4 * width, width * 2)
                return
            np.right_shift(g, 1, out=g)
            for h, kind in zip(self.host or (), self.kinds, strict=True):
                pairs = h.reshape(-1, 2).take(g, axis=0)
                h[g] = _NUMPY_OPS[kind](pairs[:, 0], pairs[:, 1])

    def _write_device(self, indices: Tensor, values: Tensor) -> None:
        g = indices + self.width
        for h in self.heaps:
            h.index_copy_(0, g, values)
        width = self.width
        while width > self.top:
            width >>= 1
            if g.numel() >= width:
                self._recompute_levels(2 * width, 4 * width, width * 2)
                return
            g = torch.div(g, 2, rounding_mode="floor")
            for h, kind in zip(self.heaps, self.kinds, strict=True):
                pairs = h.view(-1, 2).index_select(0, g)
                h.index_copy_(0, g, _TORCH_OPS[kind](pairs[:, 0], pairs[:, 1]))

    def write_range(self, start: int, values: Tensor) -> None:
        """Set the contiguous leaves ``[start, start + n)`` (no wrap-around) and fix ancestors."""
        n = values.shape[0]
        if n == 0:
            return
        lo = start + self.width
        src: Any = values.numpy() if self.host is not None else values
        for h in self._arrays():
            h[lo : lo + n] = src
        self._recompute_levels(lo, lo + n, self.width)

    def rebuild(self, values: Tensor) -> None:
        """Make leaves ``[0, n)`` equal ``values``, reset the rest to the identity, recompute."""
        n = values.shape[0]
        src: Any = values.numpy() if self.host is not None else values
        for h, kind in zip(self._arrays(), self.kinds, strict=True):
            h[self.width : self.width + n] = src
            h[self.width + n :] = _IDENTITY[kind]
        self._recompute_levels(self.width, 2 * self.width, self.width)

    def _arrays(self) -> list[Any]:
        """The numpy views on CPU, the tensors elsewhere (same indexing syntax)."""
        return list(self.host) if self.host is not None else list(self.heaps)

    def _recompute_levels(self, lo: int, hi: int, width: int) -> None:
        """Recompute the ancestors of heap nodes ``[lo, hi)`` (on the level of ``width``)."""
        ops = _NUMPY_OPS if self.host is not None else _TORCH_OPS
        arrays = self._arrays()
        while width > self.top:
            width >>= 1
            lo >>= 1
            hi = ((hi - 1) >> 1) + 1
            for h, kind in zip(arrays, self.kinds, strict=True):
                h[lo:hi] = ops[kind](h[2 * lo : 2 * hi : 2], h[2 * lo + 1 : 2 * hi : 2])

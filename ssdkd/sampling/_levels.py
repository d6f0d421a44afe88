"""Binary reduction levels over a vector of leaves, the storage behind :class:`SumTree`.

Layout (shared by every channel): a heap array of length ``2P`` where ``P`` is the capacity
rounded up to a power of two. Leaf ``i`` lives at ``P + i``; node ``k`` has children ``2k``
and ``2k + 1``, so the level of width ``w`` occupies ``[w, 2w)``. Padding the leaves to a
power of two keeps leaf order intact for any capacity (an unpadded heap scrambles it);
padding leaves hold the channel's identity (0 for sums, ±inf for min/max) and never count.

Levels are kept only down to a *flat top* of ``top = min(P, TOP_WIDTH)`` nodes; nothing above
it is stored. Queries reduce the top row directly (a sequential ``cumsum`` of ≤ 8192 values
costs a few µs on CPU), which removes the thirteen upper levels from every update and every
descent.

Every parent is recomputed from its two children (never updated by adding a delta), so the
whole structure is a pure function of the leaves: no drift, and a rebuilt tree is
bit-identical to an incrementally updated one.

Every method is written once against an :class:`~ssdkd.sampling._backend.ArrayOps`
(numpy views on CPU, torch tensors elsewhere).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ssdkd.sampling._backend import Array, ArrayOps

TOP_WIDTH = 8192
"""Width of the flat top row; levels above it are never materialised."""

_IDENTITY = {"sum": 0.0, "min": float("inf"), "max": float("-inf")}


class ReductionLevels:
    """Per-channel binary reductions (sum/min/max) of per-channel leaf values, float64.

    Every method takes one value array per channel, of the backend of ``ops``.

    Args:
        capacity: Number of leaves, ≥ 1.
        kinds: One reduction per channel, each ``"sum"``, ``"min"`` or ``"max"``.
        device: Where the heaps live.
        ops: The array backend (numpy views on CPU, torch elsewhere).
    """

    def __init__(
        self, capacity: int, kinds: Sequence[str], device: torch.device, ops: ArrayOps
    ) -> None:
        self.capacity = capacity
        self.kinds = tuple(kinds)
        self.ops = ops
        self.width = 1 << max(0, (capacity - 1).bit_length())
        self.top = min(self.width, TOP_WIDTH)
        self.heaps: list[Tensor] = [
            torch.full((2 * self.width,), _IDENTITY[k], dtype=torch.float64, device=device)
            for k in self.kinds
        ]
        # Views share the tensors' memory, so both names always see the same values.
        self.arrays: list[Array] = [ops.view(h) for h in self.heaps]
        self.pairs: list[Array] = [a.reshape(-1, 2) for a in self.arrays]
        self.tops: list[Array] = [a[self.top : 2 * self.top] for a in self.arrays]
        self.leaf_views: list[Array] = [a[self.width : self.width + capacity] for a in self.arrays]

    def write(self, indices: Array, values: Sequence[Array]) -> None:
        """Set leaves ``indices`` (one value array per channel) and fix their ancestors.

        Duplicate indices must carry identical values (callers resolve last-write-wins
        first), so the order in which a backend applies them cannot matter.
        """
        nodes = indices + self.width
        for array, value in zip(self.arrays, values, strict=True):
            array[nodes] = value
        width = self.width
        while width > self.top:
            width >>= 1
            if nodes.shape[0] >= width:
                # As many paths as nodes: recomputing the whole level (and all above it)
                # with contiguous slices is cheaper than gathering.
                self._recompute_levels(2 * width, 4 * width, 2 * width)
                return
            nodes = nodes // 2
            for array, pairs, kind in zip(self.arrays, self.pairs, self.kinds, strict=True):
                children = self.ops.take(pairs, nodes)
                array[nodes] = self._reduce(kind, children[:, 0], children[:, 1])

    def write_range(self, start: int, values: Sequence[Array]) -> None:
        """Set the contiguous leaves ``[start, start + n)`` (no wrap-around), fix ancestors."""
        n = values[0].shape[0]
        if n == 0:
            return
        lo = start + self.width
        for array, value in zip(self.arrays, values, strict=True):
            array[lo : lo + n] = value
        self._recompute_levels(lo, lo + n, self.width)

    def rebuild(self, values: Sequence[Array]) -> None:
        """Leaves ``[0, n)`` become ``values``, the rest the identity; recompute all levels."""
        n = values[0].shape[0]
        for array, kind, value in zip(self.arrays, self.kinds, values, strict=True):
            array[self.width : self.width + n] = value
            array[self.width + n :] = _IDENTITY[kind]
        self._recompute_levels(self.width, 2 * self.width, self.width)

    def _recompute_levels(self, lo: int, hi: int, width: int) -> None:
        """Recompute the ancestors of heap nodes ``[lo, hi)`` (on the level of ``width``)."""
        while width > self.top:
            width >>= 1
            lo >>= 1
            hi = ((hi - 1) >> 1) + 1
            for array, kind in zip(self.arrays, self.kinds, strict=True):
                array[lo:hi] = self._reduce(
                    kind, array[2 * lo : 2 * hi : 2], array[2 * lo + 1 : 2 * hi : 2]
                )

    def _reduce(self, kind: str, left: Array, right: Array) -> Array:
        if kind == "sum":
            return left + right
        if kind == "min":
            return self.ops.minimum(left, right)
        return self.ops.maximum(left, right)

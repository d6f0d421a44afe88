"""Binary reduction levels over a vector of leaves, the storage behind :class:`SumTree`.

Layout: one float64 array of shape ``(C, 2P)``, a row per channel, where ``P`` is the
capacity rounded up to a power of two. Row 0 holds sums, row 1 the *negated* values (so a
maximum gives the negated minimum), row 2 (optional) the keys whose maximum is kept.
Keeping both order statistics as maxima lets one array call reduce them together. In each
row, leaf ``i`` lives at ``P + i``; node ``k`` has children ``2k`` and ``2k + 1``, so the
level of width ``w`` occupies ``[w, 2w)``. Padding the leaves to a power of two keeps leaf
order intact for any capacity (an unpadded heap scrambles it); padding leaves hold the
row's identity (0 for sums, −inf for maxima) and never count.

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

import torch
from torch import Tensor

from ssdkd.sampling._backend import Array, ArrayOps

TOP_WIDTH = 8192
"""Width of the flat top row; levels above it are never materialised."""


class ReductionLevels:
    """Sums, minima and (optionally) key maxima of float64 leaves, level by level.

    Args:
        capacity: Number of leaves, ≥ 1.
        with_keys: Also keep the maximum of a per-leaf key (row 2).
        device: Where the levels live.
        ops: The array backend (numpy views on CPU, torch elsewhere).
    """

    def __init__(self, capacity: int, with_keys: bool, device: torch.device, ops: ArrayOps) -> None:
        self.capacity = capacity
        self.ops = ops
        self.width = 1 << max(0, (capacity - 1).bit_length())
        self.top = min(self.width, TOP_WIDTH)
        rows = 3 if with_keys else 2
        self.heap: Tensor = torch.full(
            (rows, 2 * self.width), float("-inf"), dtype=torch.float64, device=device
        )
        self.heap[0] = 0.0
        # Views share the tensor's memory, so both names always see the same values.
        self.array: Array = ops.view(self.heap)
        self.pairs: Array = self.array.reshape(rows, -1, 2)
        self.sums: Array = self.array[0]
        self.tops: Array = self.array[:, self.top : 2 * self.top]

    def write(self, indices: Array, rows: Array) -> None:
        """Set leaves ``indices`` to the columns of ``rows`` (``(C, B)``: values, negated
        values[, keys]) and fix their ancestors.

        Duplicate indices must carry identical values (callers resolve last-write-wins
        first), so the order in which a backend applies them cannot matter.
        """
        ops, array, pairs = self.ops, self.array, self.pairs
        nodes = indices + self.width
        array[:, nodes] = rows
        width = self.width
        while width > self.top:
            width >>= 1
            if nodes.shape[0] >= width:
                # As many paths as nodes: recomputing the whole level (and all above it)
                # with contiguous slices is cheaper than gathering.
                self._recompute_levels(2 * width, 4 * width, 2 * width)
                return
            nodes = nodes // 2
            children = ops.take(pairs, nodes, axis=1)
            array[0, nodes] = children[0, :, 0] + children[0, :, 1]
            array[1:, nodes] = ops.maximum(children[1:, :, 0], children[1:, :, 1])

    def write_range(self, start: int, rows: Array) -> None:
        """Set the contiguous leaves ``[start, start + n)`` (no wrap-around), fix ancestors."""
        n = rows.shape[1]
        if n == 0:
            return
        lo = start + self.width
        self.array[:, lo : lo + n] = rows
        self._recompute_levels(lo, lo + n, self.width)

    def rebuild(self, rows: Array) -> None:
        """Leaves ``[0, n)`` become ``rows``' columns, the rest empty; recompute all levels."""
        n = rows.shape[1]
        array = self.array
        array[:, self.width : self.width + n] = rows
        array[0, self.width + n :] = 0.0
        array[1:, self.width + n :] = float("-inf")
        self._recompute_levels(self.width, 2 * self.width, self.width)

    def _recompute_levels(self, lo: int, hi: int, width: int) -> None:
        """Recompute the ancestors of heap nodes ``[lo, hi)`` (on the level of ``width``)."""
        array, ops = self.array, self.ops
        while width > self.top:
            width >>= 1
            lo >>= 1
            hi = ((hi - 1) >> 1) + 1
            left = array[:, 2 * lo : 2 * hi : 2]
            right = array[:, 2 * lo + 1 : 2 * hi : 2]
            array[0, lo:hi] = left[0] + right[0]
            array[1:, lo:hi] = ops.maximum(left[1:], right[1:])

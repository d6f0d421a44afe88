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
    """Per-channel binary reductions (sum/min/max) of per-channel leaf values, float64.

    Every method takes one value array per channel: numpy arrays when :attr:`host` is set
    (CPU), tensors on the device otherwise.

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
        arrays = self._arrays()
        self.tops: list[Any] = [h[self.top : 2 * self.top] for h in arrays]
        self.leaf_views: list[Any] = [h[self.width : self.width + capacity] for h in arrays]
        self._pairs = [h.reshape(-1, 2) for h in self.host] if self.host is not None else []

    def write(self, indices: Any, values: Sequence[Any]) -> None:
        """Set leaves ``indices`` (one value array per channel) and fix their ancestors.

        Duplicate indices must carry identical values (callers resolve last-write-wins
        first), so the order in which a backend applies them cannot matter.
        """
        if self.host is not None:
            self._write_host(indices, values)
        else:
            self._write_device(indices, values)

    def _write_host(self, indices: np.ndarray, values: Sequence[np.ndarray]) -> None:
        g = indices + self.width
        channels = list(zip(self.host or (), self._pairs, self.kinds, values, strict=True))
        for h, _, _, v in channels:
            h[g] = v
        width = self.width
        while width > self.top:
            width >>= 1
            if g.size >= width:
                # As many paths as nodes: recomputing the whole level (and all above it)
                # with contiguous slices is cheaper than gathering.
                self._recompute_levels(2 * width, 4 * width, 2 * width)
                return
            np.right_shift(g, 1, out=g)
            for h, pairs, kind, _ in channels:
                children = pairs.take(g, axis=0)
                h[g] = _NUMPY_OPS[kind](children[:, 0], children[:, 1])

    def _write_device(self, indices: Tensor, values: Sequence[Tensor]) -> None:
        g = indices + self.width
        for h, v in zip(self.heaps, values, strict=True):
            h.index_copy_(0, g, v)
        width = self.width
        while width > self.top:
            width >>= 1
            if g.numel() >= width:
                self._recompute_levels(2 * width, 4 * width, 2 * width)
                return
            g = torch.div(g, 2, rounding_mode="floor")
            for h, kind in zip(self.heaps, self.kinds, strict=True):
                children = h.view(-1, 2).index_select(0, g)
                h.index_copy_(0, g, _TORCH_OPS[kind](children[:, 0], children[:, 1]))

    def write_range(self, start: int, values: Sequence[Any]) -> None:
        """Set the contiguous leaves ``[start, start + n)`` (no wrap-around), fix ancestors."""
        n = values[0].shape[0]
        if n == 0:
            return
        lo = start + self.width
        for h, v in zip(self._arrays(), values, strict=True):
            h[lo : lo + n] = v
        self._recompute_levels(lo, lo + n, self.width)

    def rebuild(self, values: Sequence[Any]) -> None:
        """Leaves ``[0, n)`` become ``values``, the rest the identity; recompute all levels."""
        n = values[0].shape[0]
        for h, kind, v in zip(self._arrays(), self.kinds, values, strict=True):
            h[self.width : self.width + n] = v
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

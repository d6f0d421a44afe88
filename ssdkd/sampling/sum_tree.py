"""SumTree: a float64 sum tree over non-negative leaves with inverse-CDF search."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ssdkd.sampling._checks import check_index_tensor, check_priority_values, last_write_positions
from ssdkd.sampling._levels import ReductionLevels

__all__ = ["SumTree"]


class SumTree:
    """A float64 sum tree over ``capacity`` non-negative leaves, usable on its own.

    Every parent is recomputed from its two children (never updated by deltas), so the
    total cannot drift. Leaves are padded to a power of two, so any capacity ≥ 1 keeps leaf
    order; the highest stored level is a flat row of at most 8192 nodes whose sequential
    prefix sums give :attr:`total` (see :mod:`ssdkd.sampling._levels`). A second channel keeps
    the minimum over *live* leaves (those ever written), so never-written slots cannot
    drag it to zero.

    :meth:`find` maps masses ``u ∈ [0, total]`` to leaves with ``prefix(i) ≤ u <
    prefix(i + 1)`` and **never returns a zero-mass leaf**: a mass at or beyond the total
    (possible through rounding) lands on the last positive leaf, and a descent that rounding
    would push into a zero-mass subtree stays on the positive side.

    CPU and CUDA give identical indices whenever the partial sums are exact (the top row's
    prefix sums are sequential on CPU and a parallel scan on CUDA, so otherwise they can
    differ only for masses within rounding error of a boundary).

    Args:
        capacity: Number of leaves, ≥ 1.
        device: Device of the tree (default: CPU).
        track_max_key: Also keep the maximum of a second per-leaf value, a *key* given to
            the unchecked writers (``keys=``) and read with :attr:`max_key`;
            :class:`~ssdkd.sampling.PriorityBuffer` keys leaves by raw priority.

    Example:
        >>> import torch
        >>> tree = SumTree(5)
        >>> tree.update(torch.tensor([0, 2, 4]), torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64))
        >>> tree.total.item(), tree.min.item()
        (4.0, 1.0)
        >>> tree.find(torch.tensor([0.0, 1.0, 2.999, 3.0], dtype=torch.float64))
        tensor([0, 2, 2, 4])
    """

    def __init__(
        self,
        capacity: int,
        *,
        device: torch.device | str | None = None,
        track_max_key: bool = False,
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"Expected `capacity` to be an int >= 1, got {capacity!r}")
        self._device = torch.device(device) if device is not None else torch.device("cpu")
        kinds = ("sum", "min", "max") if track_max_key else ("sum", "min")
        self._levels = ReductionLevels(capacity, kinds, self._device)
        self._track_max_key = track_max_key
        # CPU trees run their hot loops on numpy views of the same memory.
        self.host = self._levels.host is not None
        levels = self._levels
        self._leaves = levels.heaps[0][levels.width : levels.width + capacity]
        self._top_sum = levels.heaps[0][levels.top : 2 * levels.top]
        self._top_min = levels.heaps[1][levels.top : 2 * levels.top]
        self._prefix: Tensor | None = None

    @property
    def capacity(self) -> int:
        """Number of leaves."""
        return self._levels.capacity

    @property
    def device(self) -> torch.device:
        """Device holding the tree."""
        return self._device

    @property
    def leaves(self) -> Tensor:
        """Leaf values, float64 of shape ``(capacity,)``; a read-only view (write with
        :meth:`update`)."""
        return self._leaves

    @property
    def total(self) -> Tensor:
        """Sum of all leaves, a 0-dim float64 tensor on :attr:`device` (no host sync)."""
        return self.prefix_sums()[-1]

    @property
    def min(self) -> Tensor:
        """Minimum over live leaves (``inf`` before any write), 0-dim float64 tensor."""
        return self._top_min.min()

    @property
    def max_key(self) -> Tensor:
        """Maximum key over written leaves (``-inf`` before any), 0-dim float64 tensor.

        Raises:
            RuntimeError: The tree was built without ``track_max_key``.
        """
        if not self._track_max_key:
            raise RuntimeError("This SumTree was built with track_max_key=False")
        return self._levels.heaps[2][self._levels.top : 2 * self._levels.top].max()

    def max_key_host(self) -> float:
        """:attr:`max_key` as a Python float via numpy (CPU trees; no torch call)."""
        return float(self._levels.tops[2].max())

    def min_host(self) -> float:
        """:attr:`min` as a Python float via numpy (CPU trees; no torch call)."""
        return float(self._levels.tops[1].min())

    def prefix_sums(self) -> Tensor:
        """Inclusive prefix sums of the top row, monotone, shape ``(top,)``; cached."""
        if self._prefix is None:
            top = self._top_sum
            scan = torch.cumsum(top, 0)
            if not self.host:
                # A parallel scan need not be monotone after rounding: force it, and let a
                # zero-mass node repeat its predecessor's prefix so it can never be chosen.
                # (torch's CPU scan is sequential: monotone, and exactly repeating the
                # prefix over zero-mass nodes, which the search relies on.)
                scan = torch.where(top > 0, scan, 0.0).cummax(0).values
            self._prefix = scan
        return self._prefix

    def update(self, indices: Tensor, values: Tensor) -> None:
        """Set leaves; duplicate indices: the last write wins (keys, if tracked, = values).

        Args:
            indices: ``(B,)`` integer leaf indices in ``[0, capacity)``.
            values: ``(B,)`` finite, non-negative values (cast to float64).

        Raises:
            TypeError: ``indices`` is not an integer tensor or ``values`` not a tensor.
            ValueError: Shapes differ, or a value is NaN, infinite or negative.
            IndexError: An index is out of range.
        """
        indices = check_index_tensor("indices", indices, self.capacity, self._device)
        values = check_priority_values("values", values, indices.shape[0], self._device)
        # Every duplicate takes the winner's value, so the order of writes cannot matter.
        values = values[last_write_positions(indices)]
        self.write(indices, values, values if self._track_max_key else None)

    def write(self, indices: Tensor, values: Tensor, keys: Tensor | None = None) -> None:
        """Unchecked leaf write for callers that validated and deduplicated already.

        Args:
            indices: ``(B,)`` int64 leaf indices on :attr:`device`; duplicates must carry
                identical values.
            values: ``(B,)`` float64 values on :attr:`device`.
            keys: ``(B,)`` float64 keys (only with ``track_max_key``).
        """
        if self.host:
            self.write_host(indices.numpy(), values.numpy(), None if keys is None else keys.numpy())
            return
        self._levels.write(indices, self._channels(values, keys))
        self._prefix = None

    def write_host(
        self, indices: np.ndarray, values: np.ndarray, keys: np.ndarray | None = None
    ) -> None:
        """:meth:`write` with numpy arrays, for CPU trees."""
        self._levels.write(indices, self._channels(values, keys))
        self._prefix = None

    def write_range(self, start: int, values: Any, keys: Any = None) -> None:
        """Unchecked write of the contiguous leaves ``[start, start + n)``.

        ``values`` (and ``keys``) are numpy arrays on CPU trees and tensors otherwise.
        """
        self._levels.write_range(start, self._channels(values, keys))
        self._prefix = None

    def rebuild(self, values: Any, keys: Any = None) -> None:
        """Unchecked: leaves ``[0, n)`` become ``values``, the others empty (numpy on CPU)."""
        self._levels.rebuild(self._channels(values, keys))
        self._prefix = None

    def _channels(self, values: Any, keys: Any) -> list[Any]:
        if self._track_max_key != (keys is not None):
            raise ValueError(
                f"Expected `keys` exactly when track_max_key=True ({self._track_max_key})"
            )
        return [values, values, keys] if keys is not None else [values, values]

    def find(self, masses: Tensor, *, validate: bool = True) -> Tensor:
        """Inverse CDF: for each mass ``u`` the leaf ``i`` with ``prefix(i) ≤ u < prefix(i+1)``.

        Args:
            masses: ``(B,)`` masses in ``[0, total]`` (cast to float64).
            validate: Check that the tree has positive total and the masses are finite and
                non-negative; this reads values on the host (a sync on CUDA).

        Returns:
            ``(B,)`` int64 leaf indices, each with a positive leaf.

        Raises:
            ValueError: (with ``validate``) the total is 0 or a mass is negative or not finite.
        """
        masses = masses.to(device=self._device, dtype=torch.float64)
        prefix = self.prefix_sums()
        if validate:
            if not bool(prefix[-1] > 0):
                raise ValueError("Expected the tree's total to be > 0 to search it, got 0")
            bad = ~torch.isfinite(masses) | (masses < 0)
            if bool(bad.any()):
                first = int(bad.nonzero()[0, 0])
                raise ValueError(
                    f"Expected `masses` to be finite and >= 0, got {masses[first].item()!r} "
                    f"at position {first}"
                )
        if self.host:
            return torch.from_numpy(self.find_host(masses.numpy()))
        node, rest = self._top_step(masses, prefix)
        return self._descend_protected(node, rest)

    def _top_step(self, masses: Tensor, prefix: Tensor) -> tuple[Tensor, Tensor]:
        # Clamping to the float just below the total keeps every search strictly inside the
        # top row; with a monotone prefix the first node whose prefix exceeds u is positive.
        below = torch.nextafter(prefix[-1], prefix.new_tensor(float("-inf")))
        u = torch.minimum(masses, below)
        node = torch.searchsorted(prefix, u, right=True)
        before = torch.cat([prefix.new_zeros(1), prefix])[node]
        return node + self._levels.top, u - before

    def _descend_protected(self, node: Tensor, rest: Tensor) -> Tensor:
        """Descent that never enters a zero-mass right subtree (torch, any device)."""
        heap = self._levels.heaps[0]
        width = self._levels.top
        while width < self._levels.width:
            width <<= 1
            node = node * 2
            left = heap[node]
            # Going right requires mass there: rounding can leave u ≥ left although the
            # right sibling is empty, and following it would end on a zero leaf.
            go = (rest >= left) & (heap[node + 1] > 0)
            rest = torch.where(go, rest - left, rest)
            node = node + go
        return node - self._levels.width

    def find_host(self, masses: np.ndarray) -> np.ndarray:
        """Unchecked :meth:`find` on numpy arrays for the CPU fast path (CPU trees only)."""
        prefix = self.prefix_sums().numpy()
        levels = self._levels
        u = np.minimum(masses, np.nextafter(prefix[-1], -np.inf))
        top_node = np.searchsorted(prefix, u, side="right")
        # prefix[j - 1] is the mass before top node j (none before node 0).
        u -= np.where(top_node > 0, prefix.take(top_node - 1), 0.0)
        start_node, start_rest = top_node + levels.top, u.copy()
        heap = (levels.host or [])[0]
        node = start_node.copy()
        go = np.empty(u.shape, dtype=bool)
        width = levels.top
        while width < levels.width:
            width <<= 1
            node += node
            left = heap.take(node)
            np.greater_equal(u, left, out=go)
            np.subtract(u, left, out=u, where=go)
            node += go
        # This unguarded descent (5 numpy calls per level) agrees with the guarded one
        # unless it stepped into a zero-mass right subtree, which always ends on a zero
        # leaf; those rare rows are redone with the guard.
        bad = heap.take(node) <= 0
        if bad.any():
            fixed = self._descend_protected(
                torch.from_numpy(start_node[bad]), torch.from_numpy(start_rest[bad])
            )
            node[bad] = fixed.numpy() + levels.width
        return node - levels.width

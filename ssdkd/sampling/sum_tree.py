"""SumTree: a float64 sum tree over non-negative leaves with inverse-CDF search."""

from __future__ import annotations

import torch
from torch import Tensor

from ssdkd.sampling._backend import Array, ops_for
from ssdkd.sampling._checks import check_index_tensor, check_priority_values, last_write_positions
from ssdkd.sampling._levels import ReductionLevels

__all__ = ["SumTree"]


class SumTree:
    """A float64 sum tree over ``capacity`` non-negative leaves, usable on its own.

    Every parent is recomputed from its children (never updated by deltas), so the total
    cannot drift. Leaves are padded to a power of two, so any capacity ≥ 1 keeps leaf
    order; the highest stored level is a flat row of at most 8192 nodes whose sequential
    prefix sums give :attr:`total` (see :mod:`ssdkd.sampling._levels`). A second channel
    keeps the minimum over *live* leaves (those ever written), so never-written slots
    cannot drag it to zero.

    :meth:`find` maps masses ``u ∈ [0, total]`` to leaves with ``prefix(i) ≤ u <
    prefix(i + 1)`` and **never returns a zero-mass leaf**: a mass at or beyond the total
    (possible through rounding) lands on the last positive leaf, and a descent that rounding
    would push into a zero-mass subtree stays on the positive side.

    CPU and CUDA give identical indices whenever the partial sums are exact (sums are
    sequential on CPU and may be parallel scans on CUDA, so otherwise they can differ only
    for masses within rounding error of a boundary).

    Args:
        capacity: Number of leaves, ≥ 1.
        device: Device of the tree (default: CPU).
        track_max_key: Also keep the maximum of a second per-leaf value, a *key* given to
            the unchecked writers (``keys=``) and read with :attr:`max_key`;
            :class:`~ssdkd.sampling.PriorityBuffer` keys leaves by raw priority.
        host: Run on numpy views of the tensors (default: exactly when on CPU); ``False``
            runs the device code path on CPU tensors, which the tests compare.

    Examples:
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
        host: bool | None = None,
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"Expected `capacity` to be an int >= 1, got {capacity!r}")
        self._device = torch.device(device) if device is not None else torch.device("cpu")
        self.ops = ops_for(self._device, host=host)
        kinds = ("sum", "min", "max") if track_max_key else ("sum", "min")
        self._levels = ReductionLevels(capacity, kinds, self._device, self.ops)
        self._track_max_key = track_max_key
        levels = self._levels
        self._leaves = levels.heaps[0][levels.width : levels.width + capacity]
        self.leaf_array: Array = levels.leaf_views[0]
        """The leaves as an array of :attr:`ops` (read only)."""
        # Leading 0, then the inclusive prefix sums of the top row; valid while not stale.
        self._prefix_tensor = torch.zeros(levels.top + 1, dtype=torch.float64, device=self._device)
        self._prefix = self.ops.view(self._prefix_tensor)
        self._stale = True

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
        self._prefix_array()
        return self._prefix_tensor[-1].clone()

    @property
    def min(self) -> Tensor:
        """Minimum over live leaves (``inf`` before any write), 0-dim float64 tensor."""
        return torch.as_tensor(self.min_array(), device=self._device)

    @property
    def max_key(self) -> Tensor:
        """Maximum key over written leaves (``-inf`` before any), 0-dim float64 tensor.

        Raises:
            RuntimeError: The tree was built without ``track_max_key``.
        """
        return torch.as_tensor(self.max_key_array(), device=self._device)

    def min_array(self) -> Array:
        """:attr:`min` as a 0-dim value of :attr:`ops` (a numpy scalar on CPU)."""
        return self._levels.tops[1].min()

    def max_key_array(self) -> Array:
        """:attr:`max_key` as a 0-dim value of :attr:`ops` (a numpy scalar on CPU)."""
        if not self._track_max_key:
            raise RuntimeError("This SumTree was built with track_max_key=False")
        return self._levels.tops[2].max()

    def prefix_sums(self) -> Tensor:
        """Inclusive prefix sums of the top row, monotone, shape ``(top,)`` (a copy)."""
        self._prefix_array()
        return self._prefix_tensor[1:].clone()

    def total_array(self) -> Array:
        """:attr:`total` as a ``(1,)`` array of :attr:`ops`."""
        return self._prefix_array()[-1:]

    def _prefix_array(self) -> Array:
        if self._stale:
            self.ops.prefix_sums_(self._levels.tops[0], self._prefix)
            self._stale = False
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
        index_array, value_array = self.ops.view(indices), self.ops.view(values)
        # Every duplicate takes the winner's value, so the order of writes cannot matter.
        value_array = self.ops.take(value_array, last_write_positions(self.ops, index_array))
        keys = value_array if self._track_max_key else None
        self.write_array(index_array, value_array, keys)

    def write(self, indices: Tensor, values: Tensor, keys: Tensor | None = None) -> None:
        """Unchecked leaf write for callers that validated and deduplicated already.

        Args:
            indices: ``(B,)`` int64 leaf indices on :attr:`device`; duplicates must carry
                identical values.
            values: ``(B,)`` float64 values on :attr:`device`.
            keys: ``(B,)`` float64 keys (only with ``track_max_key``).
        """
        view = self.ops.view
        self.write_array(view(indices), view(values), None if keys is None else view(keys))

    def write_array(self, indices: Array, values: Array, keys: Array | None = None) -> None:
        """:meth:`write` with arrays of :attr:`ops`."""
        self._levels.write(indices, self._channels(values, keys))
        self._stale = True

    def write_range(self, start: int, values: Array, keys: Array | None = None) -> None:
        """Unchecked write of the contiguous leaves ``[start, start + n)`` (arrays of
        :attr:`ops`)."""
        self._levels.write_range(start, self._channels(values, keys))
        self._stale = True

    def rebuild(
        self, values: Array, keys: Array | None = None, written: Array | None = None
    ) -> None:
        """Unchecked: leaves ``[0, n)`` become ``values``, the others empty (arrays of
        :attr:`ops`).

        ``written`` (bool, ``(n,)``) marks which of them count as written for :attr:`min`
        and :attr:`max_key` (default: all).
        """
        channels = self._channels(values, keys)
        if written is not None:
            ops = self.ops
            channels[1] = ops.where(written, values, float("inf"))
            if keys is not None:
                channels[2] = ops.where(written, keys, float("-inf"))
        self._levels.rebuild(channels)
        self._stale = True

    def _channels(self, values: Array, keys: Array | None) -> list[Array]:
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
        if validate:
            if not bool(self.total > 0):
                raise ValueError("Expected the tree's total to be > 0 to search it, got 0")
            bad = ~torch.isfinite(masses) | (masses < 0)
            if bool(bad.any()):
                first = int(bad.nonzero()[0, 0])
                raise ValueError(
                    f"Expected `masses` to be finite and >= 0, got {masses[first].item()!r} "
                    f"at position {first}"
                )
        return self.ops.tensor(self.find_array(self.ops.view(masses.contiguous())))

    def find_array(self, masses: Array) -> Array:
        """Unchecked :meth:`find` on an array of :attr:`ops` (masses are not modified).

        Where host reads are free (numpy), the descent runs unguarded and the rare rows
        that rounding pushed onto a zero-mass leaf are redone guarded; elsewhere it always
        runs guarded, so that it never synchronises.
        """
        ops = self.ops
        prefix = self._prefix_array()
        # Clamping to the float just below the total keeps every search inside the top row;
        # with a monotone prefix the node whose prefix bracket holds u has positive mass.
        u = ops.minimum(masses, ops.below(prefix[-1:]))
        node = ops.searchsorted_right(prefix, u) - 1
        if self._levels.top == self._levels.width:
            return node  # no levels: the top row holds the leaves
        rest = u - ops.take(prefix, node)
        if not ops.may_sync:
            return self._descend(node, rest, guarded=True)
        leaf = self._descend(node, rest, guarded=False)
        # The whole leaf row, padding included: rounding can end an unguarded descent there.
        bad = ops.take(self._levels.arrays[0], leaf + self._levels.width) <= 0
        if ops.any(bad):
            leaf[bad] = self._descend(node[bad], rest[bad], guarded=True)
        return leaf

    def _descend(self, node: Array, rest: Array, *, guarded: bool) -> Array:
        """From top-row nodes with the mass ``rest`` left inside each, down to leaves.

        A step goes right when the rest reaches the left child's mass; rounding can leave
        the rest there although the right subtree is empty, and ``guarded`` then stays left.
        """
        ops, levels = self.ops, self._levels
        heap = levels.arrays[0]
        node = node + levels.top
        width = levels.top
        while width < levels.width:
            width <<= 1
            node = node + node
            left = ops.take(heap, node)
            go = rest >= left
            if guarded:
                go = go & (ops.take(heap, node + 1) > 0)
            rest = rest - left * go
            node = node + go
        return node - levels.width

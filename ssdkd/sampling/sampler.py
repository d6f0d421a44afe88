"""PrioritySampler: prioritized draws over slots, with importance weights, and no storage."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ssdkd.sampling._backend import Array
from ssdkd.sampling._checks import (
    check_index_shape,
    check_index_tensor,
    check_mask,
    check_priority_shape,
    check_priority_values,
    check_slots,
    last_write_positions,
)
from ssdkd.sampling._state import check_sampler_state
from ssdkd.sampling.sum_tree import SumTree
from ssdkd.sampling.weights import importance_weights, priority_leaves

__all__ = ["WEIGHT_NORMS", "PriorityDraw", "PrioritySampler"]

WEIGHT_NORMS = ("max", "batch", "mean")
"""The importance-weight normalisations (see :class:`PrioritySampler`)."""


class PriorityDraw(NamedTuple):
    """One prioritized draw of ``B`` slots (arrays of the sampler's backend when internal)."""

    indices: Any
    """``(B,)`` int64 slots, in ascending order."""
    weights: Any
    """``(B,)`` float64 importance weights."""
    probabilities: Any
    """``(B,)`` float64 ``P(i)`` of each draw."""


class PrioritySampler:
    """Draws slots with ``P(i) ∝ (p_i + ε)^α`` and importance weights; stores no items.

    It pairs with any storage that addresses items by slot (:class:`FieldStorage`, a
    tensor, a user's own ring): give a slot its priority when an item is written there
    (:meth:`set`), draw slots (:meth:`sample`), and update the drawn slots' priorities
    (:meth:`update`). :class:`PriorityBuffer` composes it with a :class:`FieldStorage`.

    * **Raw** priorities ``p_i`` are stored; the sum tree holds ``(p_i + ε)^α``. Setting
      :attr:`alpha` rebuilds the leaves from the raw values, so α is never applied twice.
    * Slots become live when first given a priority; slots fill from 0 upwards, as any
      ring buffer does, and :attr:`size` is one past the highest live slot. A slot below
      :attr:`size` that never received a priority has no mass and is never drawn.
    * Items set without a priority get the maximum raw priority currently stored (1.0
      when empty), transformed once.
    * Importance weights ``w_i = (N·P(i))^(−β)`` are normalised (``weight_norm``):

      - ``"max"`` (the PER paper's): by the maximum over all live items, which reduces to
        ``(leaf_i / min_leaf)^(−β) ∈ (0, 1]``. One near-zero priority anywhere makes
        ``min_leaf`` tiny and scales *every* weight down towards 0.
      - ``"batch"``: by the maximum over the drawn batch, ``(leaf_i / min_batch)^(−β)``,
        in (0, 1]. A near-zero priority only matters once it is drawn, which its small
        P(i) makes rare.
      - ``"mean"``: to mean 1 over the drawn batch, ``w_i / mean_j w_j`` (self-normalised
        importance sampling). A weighted loss keeps the scale of an unweighted one
        whatever the priorities, so a learning rate tuned for uniform draws still fits;
        weights lie in (0, B].
    * Draws are independent (``stratified=True``: one per equal-mass stratum) and returned
      in slot order (the uniform variates are sorted before the search, which changes
      nothing about the multiset drawn and makes the search faster).
    * In :meth:`update`, duplicate indices: the last *valid* write wins.
    * NaN, ±inf or negative priorities raise ``ValueError`` naming the first bad position;
      every rejected call leaves the sampler bit-identical.
    * Tree and random numbers live on ``device``. With ``validate=False`` nothing reads
      values on the host (no sync on CUDA); value checks are then skipped and the caller
      guarantees valid input. Shape and dtype checks always run (metadata only).

    Args:
        capacity: Number of slots, ≥ 1.
        alpha: Prioritisation exponent in [0, 1] (0: uniform sampling).
        beta: Importance-sampling exponent in [0, 1] (0: all weights 1).
        eps: Offset ε > 0 added to raw priorities before the exponent.
        device: Device of the tree (default CPU).
        generator: Source of randomness on ``device``; default: a new generator seeded from
            torch's global generator.
        weight_norm: ``"mean"`` (default: one near-zero priority cannot collapse the
            weights), ``"batch"`` or ``"max"`` (the PER paper's); see above.
        stratified: Draw one mass per equal stratum of the total instead of independently.
        validate: Check values of inputs (syncs on CUDA); see above.
        host: Run on numpy views (default: exactly on CPU); ``False`` runs the device code
            path on CPU tensors, which the tests compare.

    Examples:
        >>> import torch
        >>> sampler = PrioritySampler(4, alpha=1.0, beta=1.0,
        ...                           generator=torch.Generator().manual_seed(0))
        >>> sampler.set(torch.tensor([0, 1, 2]), torch.tensor([1.0, 2.0, 5.0]))
        >>> draw = sampler.sample(2)
        >>> draw.indices.shape, bool((draw.weights > 0).all() and (draw.weights <= 1).all())
        (torch.Size([2]), True)
        >>> sampler.update(draw.indices, torch.zeros(2))
        >>> sampler.size
        3
    """

    def __init__(
        self,
        capacity: int,
        *,
        alpha: float = 0.6,
        beta: float = 0.4,
        eps: float = 1e-6,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
        weight_norm: str = "mean",
        stratified: bool = False,
        validate: bool = True,
        host: bool | None = None,
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"Expected `capacity` to be an int >= 1, got {capacity!r}")
        _check_unit("alpha", alpha)
        _check_unit("beta", beta)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < math.inf:
            raise ValueError(f"Expected `eps` to be a finite float > 0, got {eps!r}")
        _check_weight_norm(weight_norm)
        self._device = torch.device(device) if device is not None else torch.device("cpu")
        if generator is None:
            generator = torch.Generator(device=self._device)
            generator.manual_seed(int(torch.randint(0, 2**62, (1,))))
        elif not isinstance(generator, torch.Generator):
            raise TypeError(f"Expected `generator` to be a torch.Generator, got {generator!r}")
        elif generator.device.type != self._device.type:
            raise ValueError(
                f"Expected `generator` on device type {self._device.type}, "
                f"got {generator.device.type}"
            )
        self._capacity = capacity
        self._alpha = float(alpha)
        self._beta = float(beta)
        self._eps = float(eps)
        self._generator = generator
        self._weight_norm = weight_norm
        self.stratified = bool(stratified)
        self.validate = bool(validate)
        # Leaves are keyed by raw priority so the tree also yields the maximum raw priority.
        self._tree = SumTree(capacity, device=self._device, track_max_key=True, host=host)
        self.ops = self._tree.ops
        self._raw = torch.zeros(capacity, dtype=torch.float64, device=self._device)
        self._raw_array = self.ops.view(self._raw)
        self._size = 0

    # ----------------------------------------------------------------- properties
    @property
    def capacity(self) -> int:
        """Number of slots."""
        return self._capacity

    @property
    def device(self) -> torch.device:
        """Device of tree and generator."""
        return self._device

    @property
    def generator(self) -> torch.Generator:
        """The source of the draws' randomness."""
        return self._generator

    @property
    def size(self) -> int:
        """One past the highest slot ever given a priority (0 when none)."""
        return self._size

    @property
    def tree(self) -> SumTree:
        """The sum tree over the leaves ``(p + ε)^α`` (read it; write through the sampler)."""
        return self._tree

    @property
    def eps(self) -> float:
        """Offset ε added to raw priorities."""
        return self._eps

    @property
    def alpha(self) -> float:
        """Prioritisation exponent α; setting it rebuilds every leaf from its raw priority."""
        return self._alpha

    @alpha.setter
    def alpha(self, value: float) -> None:
        _check_unit("alpha", value)
        self._alpha = float(value)
        self._rebuild()

    @property
    def beta(self) -> float:
        """Importance-sampling exponent β in [0, 1]."""
        return self._beta

    @beta.setter
    def beta(self, value: float) -> None:
        _check_unit("beta", value)
        self._beta = float(value)

    @property
    def weight_norm(self) -> str:
        """Normalisation of the importance weights: ``"max"``, ``"batch"`` or ``"mean"``."""
        return self._weight_norm

    @weight_norm.setter
    def weight_norm(self, value: str) -> None:
        _check_weight_norm(value)
        self._weight_norm = value

    def priorities(self, indices: Tensor | None = None) -> Tensor:
        """Raw priorities, float64 (a copy): of slots ``[0, size)``, or of ``indices``."""
        if indices is None:
            return self._raw[: self._size].clone()
        if self.validate:
            indices = check_index_tensor("indices", indices, self._size, self._device)
        else:
            indices = check_index_shape("indices", indices, self._device)
        return self._raw.index_select(0, indices)

    def max_priority(self) -> Tensor:
        """Maximum raw priority stored (1.0 when none), 0-dim float64, no host sync."""
        if self._size == 0:
            return torch.ones((), dtype=torch.float64, device=self._device)
        return torch.as_tensor(self._tree.max_key_array(), device=self._device)

    # ----------------------------------------------------------------- writing
    def set(self, slots: Tensor, priorities: Tensor | None = None) -> None:
        """Give slots (of newly written items) their raw priorities; the slots become live.

        Args:
            slots: ``(n,)`` distinct integer slots in ``[0, capacity)``.
            priorities: Optional ``(n,)`` raw priorities; default: the current maximum.

        Reads the highest slot on the host to move :attr:`size` (a sync on CUDA);
        :class:`PriorityBuffer` writes through :meth:`set_range`, which does not.

        Raises:
            TypeError: Non-tensor or wrongly typed arguments.
            ValueError: Shapes, repeated slots (with ``validate``) or bad priorities.
            IndexError: A slot outside ``[0, capacity)`` (with ``validate``).
        """
        slots = check_slots(slots, self._capacity, self._device, validate=self.validate)
        raw = self.check_new(priorities, slots.shape[0])
        if slots.numel():
            self.set_unchecked(self.ops.view(slots), raw)
            self._size = max(self._size, int(slots.max()) + 1)

    def check_new(self, priorities: Tensor | None, n: int) -> Array:
        """Checked raw priorities of ``n`` new items as an array of :attr:`ops`."""
        if priorities is None:
            return self.ops.repeat(self._default_raw(), n)
        if self.validate:
            raw = check_priority_values("priorities", priorities, n, self._device)
        else:
            raw = check_priority_shape("priorities", priorities, n, self._device)
        return self.ops.view(raw)

    def set_unchecked(self, slots: Array, raw: Array) -> None:
        """:meth:`set` for callers that checked: distinct ``slots``, raw from
        :meth:`check_new`; does not move :attr:`size`."""
        self._raw_array[slots] = raw
        self._tree.write_array(slots, self._leaves(raw), raw)

    def set_range(self, start: int, raw: Array) -> None:
        """Unchecked :meth:`set` of the contiguous slots ``[start, start + n)``."""
        end = start + raw.shape[0]
        self._raw_array[start:end] = raw
        self._tree.write_range(start, self._leaves(raw), raw)
        self._size = max(self._size, end)

    def update(self, indices: Tensor, priorities: Tensor, valid: Tensor | None = None) -> None:
        """Set raw priorities of live (drawn) slots.

        Args:
            indices: ``(B,)`` slots in ``[0, size)``; duplicates: the last valid write wins.
            priorities: ``(B,)`` finite, non-negative raw priorities (detached, float64).
            valid: Optional ``(B,)`` bool; an invalid write (e.g. for a slot rewritten
                since it was drawn) is dropped.

        Raises:
            TypeError: Non-tensor or wrongly typed arguments.
            ValueError: Shape mismatches or bad priorities (with ``validate``: NaN/inf/< 0).
            IndexError: (with ``validate``) an index outside ``[0, size)``.
        """
        indices = check_index_shape("indices", indices, self._device)
        raw = check_priority_shape("priorities", priorities, indices.shape[0], self._device)
        if valid is not None:
            valid = check_mask("valid", valid, indices.shape[0], self._device)
        view = self.ops.view
        index_array, raw_array = view(indices), view(raw)
        self.check_update(index_array, raw_array)
        self.update_unchecked(index_array, raw_array, None if valid is None else view(valid))

    def check_update(self, indices: Array, raw: Array) -> None:
        """With :attr:`validate`: indices in ``[0, size)``, finite non-negative priorities
        (arrays of :attr:`ops` of equal length)."""
        if not self.validate or indices.shape[0] == 0:
            return
        # Two reductions each (NaN fails both comparisons); the full checks rerun only to
        # build the error message.
        if not bool((indices.min() >= 0) & (indices.max() < self._size)):
            check_index_tensor("indices", self.ops.tensor(indices), self._size, self._device)
        if not bool((raw.min() >= 0) & (raw.max() < math.inf)):
            check_priority_values("priorities", self.ops.tensor(raw), raw.shape[0], self._device)

    def update_unchecked(self, indices: Array, raw: Array, valid: Array | None) -> None:
        """:meth:`update` on arrays of :attr:`ops` that passed :meth:`check_update`."""
        if indices.shape[0] == 0:
            return
        ops = self.ops
        if ops.may_sync and bool((indices[1:] > indices[:-1]).all()):
            # Distinct and ascending (a sample's order, unless it drew a slot twice): every
            # write wins its slot.
            new_raw, winner_valid = raw, valid
        else:
            winner = last_write_positions(ops, indices, valid)
            new_raw = ops.take(raw, winner)
            winner_valid = None if valid is None else ops.take(valid, winner)
        if winner_valid is not None:
            # A stale winner means no valid write for that slot: keep its current value.
            stored = ops.take(self._raw_array, indices)
            new_raw = ops.where(winner_valid, new_raw, stored)
        self._raw_array[indices] = new_raw
        self._tree.write_array(indices, self._leaves(new_raw), new_raw)

    # ----------------------------------------------------------------- sampling
    def sample(self, batch_size: int) -> PriorityDraw:
        """Draw ``batch_size`` live slots with ``P(i) = leaf_i / total`` (with replacement).

        Returns:
            A :class:`PriorityDraw` of tensors on :attr:`device`.

        Raises:
            ValueError: ``batch_size < 1`` or no slot is live.
        """
        draw = self.sample_array(batch_size)
        tensor = self.ops.tensor
        return PriorityDraw(tensor(draw.indices), tensor(draw.weights), tensor(draw.probabilities))

    def sample_array(self, batch_size: int) -> PriorityDraw:
        """:meth:`sample` returning arrays of :attr:`ops`."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"Expected `batch_size` to be an int >= 1, got {batch_size!r}")
        if self._size == 0:
            raise ValueError("Expected a non-empty buffer to sample from, got len 0")
        ops, tree = self.ops, self._tree
        u = torch.rand(
            batch_size, dtype=torch.float64, device=self._device, generator=self._generator
        )
        if self.stratified:
            u = (torch.arange(batch_size, device=self._device) + u) / batch_size
        # Sorted masses give the same multiset of i.i.d. draws, returned in slot order; the
        # searches then hit nearby nodes in turn (several times faster than random keys).
        total = tree.total_array()
        indices = tree.find_array(ops.sort(ops.view(u)) * total)
        leaves = ops.take(tree.leaf_array, indices)
        min_leaf = tree.min_array() if self._weight_norm == "max" else leaves.min()
        weights = importance_weights(leaves, min_leaf, self._beta)
        if self._weight_norm == "mean":
            weights = weights / weights.mean()
        return PriorityDraw(indices, weights, leaves / total)

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Hyper-parameters, raw priorities, leaves and generator state.

        The leaves are stored rather than recomputed (``pow`` may differ by an ulp between
        vectorised and scalar paths, and a reload must be bit-identical).
        """
        return {
            "alpha": self._alpha,
            "beta": self._beta,
            "eps": self._eps,
            "weight_norm": self._weight_norm,
            "stratified": self.stratified,
            "size": self._size,
            "raw_priorities": self._raw.clone(),
            "leaves": self._tree.leaves.clone(),
            "generator_state": self._generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`.

        Raises:
            ValueError: Missing keys or inconsistent values (the sampler is then unchanged).
        """
        check_sampler_state(state, self._capacity, self._generator)
        self._generator.set_state(state["generator_state"])
        self._alpha = float(state["alpha"])
        self._beta = float(state["beta"])
        self._eps = float(state["eps"])
        self._weight_norm = str(state["weight_norm"])
        self.stratified = bool(state["stratified"])
        self._size = int(state["size"])
        # Copy into the existing tensor: the array view shares its memory.
        self._raw.copy_(state["raw_priorities"])
        leaves = self.ops.view(state["leaves"][: self._size].to(self._device, torch.float64))
        # A slot never given a priority has leaf 0 (every set leaf is > 0, as ε > 0).
        self._tree.rebuild(leaves, self._raw_array[: self._size], leaves > 0)

    # ----------------------------------------------------------------- helpers
    def _rebuild(self) -> None:
        live = self._raw_array[: self._size]
        # Slots never given a priority (leaf 0; every set leaf is > 0) keep no mass.
        written = self._tree.leaf_array[: self._size] > 0
        self._tree.rebuild(self.ops.where(written, self._leaves(live), 0.0), live, written)

    def _leaves(self, raw: Array) -> Array:
        return priority_leaves(raw, self._alpha, self._eps)

    def _default_raw(self) -> Array:
        """Maximum raw priority present (1.0 when none), a 0-dim value of :attr:`ops`."""
        return self._tree.max_key_array() if self._size else 1.0


def _check_unit(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"Expected `{name}` to be a float in [0, 1], got {value!r}")


def _check_weight_norm(value: object) -> None:
    if value not in WEIGHT_NORMS:
        raise ValueError(f"Expected `weight_norm` in {WEIGHT_NORMS}, got {value!r}")

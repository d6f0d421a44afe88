"""PriorityBuffer: fixed-capacity storage of named tensors with prioritized sampling."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ssdkd.sampling._checks import (
    check_fields,
    check_index_shape,
    check_index_tensor,
    check_priority_shape,
    check_priority_values,
    last_write_positions,
    last_write_positions_host,
)
from ssdkd.sampling._state import SCHEMA_VERSION, check_state
from ssdkd.sampling.sum_tree import SumTree
from ssdkd.sampling.weights import (
    importance_weights,
    importance_weights_host,
    priority_leaves,
    priority_leaves_host,
    sampling_probabilities,
)

__all__ = ["PriorityBuffer", "PrioritySample"]

_WEIGHT_NORMS = ("max", "batch", "mean")


@dataclass(frozen=True)
class PrioritySample:
    """One prioritized draw of ``B`` items.

    Attributes:
        data: Each stored field's rows for the drawn slots, ``(B, *field_shape)``.
        indices: ``(B,)`` int64 slots drawn (pass back to ``update_priorities``).
        weights: ``(B,)`` importance weights, default float dtype: in ``(0, 1]`` for
            ``weight_norm`` "max" and "batch", with mean 1 for "mean".
        probabilities: ``(B,)`` float64 ``P(i)`` of each draw.
        generations: ``(B,)`` int64 write counters of the drawn slots at draw time.
    """

    data: dict[str, Tensor]
    indices: Tensor
    weights: Tensor
    probabilities: Tensor
    generations: Tensor


class PriorityBuffer:
    """A ring buffer of named tensors sampled with ``P(i) ∝ (p_i + ε)^α``.

    Semantics (prioritized experience replay, with the pitfalls of common implementations
    pinned down):

    * **Raw** priorities ``p_i`` are stored; the sum tree holds ``(p_i + ε)^α``. Setting
      :attr:`alpha` rebuilds the leaves from the raw values, so α is never applied twice.
    * Items added without a priority get the maximum raw priority currently stored
      (1.0 when empty), transformed once.
    * Importance weights ``w_i = (N·P(i))^(−β)`` are normalised (``weight_norm``):

      - ``"max"`` (the PER paper's): by the maximum over all live items, which reduces to
        ``(leaf_i / min_leaf)^(−β) ∈ (0, 1]``. One near-zero priority anywhere in the
        buffer makes ``min_leaf`` tiny and scales *every* weight down towards 0.
      - ``"batch"``: by the maximum over the drawn batch, ``(leaf_i / min_batch)^(−β)``,
        in (0, 1]. A near-zero priority only matters once it is drawn, which its small
        P(i) makes rare.
      - ``"mean"``: to mean 1 over the drawn batch, ``w_i / mean_j w_j`` (self-normalised
        importance sampling). The weighted loss keeps the scale of an unweighted one
        whatever the priorities, so a learning rate tuned for uniform draws still fits;
        weights lie in (0, B].
    * Draws are independent (``stratified=True``: one per equal-mass stratum) and returned
      in slot order (the uniform variates are sorted before the search, which changes
      nothing about the multiset drawn and makes the search faster).
    * Every slot has a generation (write counter); :meth:`update_priorities` with
      ``generations`` drops updates for slots rewritten since they were drawn. Duplicate
      indices in one call: the last write wins.
    * NaN, ±inf or negative priorities raise ``ValueError`` naming the first bad position.
      Every rejected call leaves the buffer bit-identical (all checks precede all writes).
    * Storage, tree and random numbers live on ``device``. With ``validate=False``, sampling
      and priority updates do no host synchronisation on CUDA: value checks (finite,
      non-negative, index range, unique replace slots) are then skipped and the caller
      guarantees valid input. Shape, dtype and field-name checks always run (they read
      metadata only).

    Slots fill from 0 upwards; once full, :meth:`extend` overwrites the oldest (FIFO).

    Args:
        capacity: Number of slots, ≥ 1.
        alpha: Prioritisation exponent in [0, 1] (0: uniform sampling).
        beta: Importance-sampling exponent in [0, 1] (0: all weights 1).
        eps: Offset ε > 0 added to raw priorities before the exponent.
        device: Device of storage and tree (default CPU).
        generator: Source of randomness on ``device``; default: a new generator seeded from
            torch's global generator.
        weight_norm: ``"max"`` (buffer-wide, default), ``"batch"`` or ``"mean"``; see above.
        stratified: Draw one mass per equal stratum of the total instead of independently.
        validate: Check values of inputs (syncs on CUDA); see above.

    Example:
        >>> import torch
        >>> buf = PriorityBuffer(4, alpha=1.0, beta=1.0, generator=torch.Generator().manual_seed(0))
        >>> buf.extend(x=torch.arange(3), priorities=torch.tensor([1.0, 2.0, 5.0]))
        tensor([0, 1, 2])
        >>> s = buf.sample(2)
        >>> s.data["x"].shape, bool((s.weights > 0).all() and (s.weights <= 1).all())
        (torch.Size([2]), True)
        >>> buf.update_priorities(s.indices, torch.zeros(2), generations=s.generations)
        >>> len(buf), buf.capacity
        (3, 4)
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
        weight_norm: str = "max",
        stratified: bool = False,
        validate: bool = True,
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"Expected `capacity` to be an int >= 1, got {capacity!r}")
        _check_unit("alpha", alpha)
        _check_unit("beta", beta)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < math.inf:
            raise ValueError(f"Expected `eps` to be a finite float > 0, got {eps!r}")
        if weight_norm not in _WEIGHT_NORMS:
            raise ValueError(f"Expected `weight_norm` in {_WEIGHT_NORMS}, got {weight_norm!r}")
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
        self.weight_norm = weight_norm
        self.stratified = bool(stratified)
        self.validate = bool(validate)
        # Leaves are keyed by raw priority so the tree also yields the maximum raw priority.
        self._tree = SumTree(capacity, device=self._device, track_max_key=True)
        self._raw = torch.zeros(capacity, dtype=torch.float64, device=self._device)
        self._generations = torch.zeros(capacity, dtype=torch.int64, device=self._device)
        self._fields: dict[str, Tensor] = {}
        self._size = 0
        self._cursor = 0
        # On CPU the hot paths run on numpy views of the same memory (numpy calls on a few
        # hundred elements cost a fraction of a torch call); elsewhere everything is torch.
        self._host = self._device.type == "cpu"
        if self._host:
            self._raw_np = self._raw.numpy()
            self._generations_np = self._generations.numpy()
            self._leaves_np = self._tree.leaves.numpy()

    # ----------------------------------------------------------------- properties
    @property
    def capacity(self) -> int:
        """Number of slots."""
        return self._capacity

    @property
    def device(self) -> torch.device:
        """Device of storage, tree and generator."""
        return self._device

    @property
    def tree(self) -> SumTree:
        """The sum tree over the leaves ``(p + ε)^α`` (read it; write through the buffer)."""
        return self._tree

    @property
    def data(self) -> dict[str, Tensor]:
        """Stored fields of the live slots, ``(len, *shape)`` views (do not write to them)."""
        return {name: value[: self._size] for name, value in self._fields.items()}

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
        self._rebuild_trees()

    @property
    def beta(self) -> float:
        """Importance-sampling exponent β in [0, 1]."""
        return self._beta

    @beta.setter
    def beta(self, value: float) -> None:
        _check_unit("beta", value)
        self._beta = float(value)

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return (
            f"PriorityBuffer(len={self._size}, capacity={self._capacity}, alpha={self._alpha}, "
            f"beta={self._beta}, eps={self._eps}, fields={sorted(self._fields)}, "
            f"device={self._device})"
        )

    def priorities(self, indices: Tensor | None = None) -> Tensor:
        """Raw priorities, float64 (a copy): of the live slots ``(len,)``, or of ``indices``.

        Args:
            indices: Optional ``(B,)`` slots (e.g. ``PrioritySample.indices``); only their
                priorities are gathered, without copying the whole buffer's.
        """
        if indices is None:
            return self._raw[: self._size].clone()
        return self._raw.index_select(0, check_index_shape("indices", indices, self._device))

    def class_counts(self, field: str, num_classes: int) -> Tensor:
        """Histogram of an integer ``(capacity,)`` field over the live slots.

        Args:
            field: Name of a stored integer field with one value per item.
            num_classes: Length of the histogram, ≥ 1.

        Returns:
            ``(num_classes,)`` int64 counts (all zero before the first :meth:`extend`).

        Raises:
            KeyError: ``field`` is not stored.
            ValueError: The field is not one integer per item, or (with ``validate``) a
                value lies outside ``[0, num_classes)``.
        """
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"Expected `num_classes` to be an int >= 1, got {num_classes!r}")
        if not self._fields:
            # Nothing stored yet (no schema either): every class has count 0.
            return torch.zeros(num_classes, dtype=torch.int64, device=self._device)
        if field not in self._fields:
            raise KeyError(f"Expected `field` to be one of {sorted(self._fields)}, got {field!r}")
        stored = self._fields[field]
        if stored.dim() != 1 or stored.dtype.is_floating_point or stored.dtype == torch.bool:
            raise ValueError(
                f"Expected field {field!r} to hold one integer per item, got dtype "
                f"{stored.dtype} and item shape {tuple(stored.shape[1:])}"
            )
        values = stored[: self._size].to(torch.int64)
        if self.validate and values.numel():
            bad = (values < 0) | (values >= num_classes)
            if bool(bad.any()):
                first = int(bad.nonzero()[0, 0])
                raise ValueError(
                    f"Expected `{field}` values in [0, {num_classes}), got "
                    f"{int(values[first])} at slot {first}"
                )
        counts = torch.zeros(num_classes, dtype=torch.int64, device=self._device)
        return counts.index_add_(0, values, torch.ones_like(values))

    # ----------------------------------------------------------------- writing
    def extend(self, *, priorities: Tensor | None = None, **fields: Tensor) -> Tensor:
        """Append items, overwriting the oldest ones once full (FIFO).

        Args:
            priorities: Optional ``(n,)`` raw priorities; default: the current maximum raw
                priority (1.0 when empty).
            **fields: Named tensors with the same leading dimension ``n ≤ capacity``. The
                first call fixes the names, item shapes and dtypes.

        Returns:
            ``(n,)`` int64 slots written.

        Raises:
            TypeError: A field is not a tensor or has a different dtype than stored.
            ValueError: Missing/extra fields, mismatched shapes, ``n > capacity`` or bad
                priorities.
        """
        n = check_fields(fields, self._fields, self._capacity, "extend")
        raw = self._new_raw(priorities, n)
        if n == 0:
            return torch.zeros(0, dtype=torch.int64, device=self._device)
        if not self._fields:
            self._fields = {
                name: torch.empty(
                    (self._capacity, *value.shape[1:]), dtype=value.dtype, device=self._device
                )
                for name, value in fields.items()
            }
        start = self._cursor
        first = min(n, self._capacity - start)
        self._write_range(start, 0, first, fields, raw)
        if first < n:
            self._write_range(0, first, n, fields, raw)
        self._cursor = (start + n) % self._capacity
        self._size = min(self._capacity, self._size + n)
        if self._host:
            return torch.from_numpy((np.arange(n) + start) % self._capacity)
        return (torch.arange(n, device=self._device) + start) % self._capacity

    def _write_range(
        self, slot: int, lo: int, hi: int, fields: dict[str, Tensor], raw: Any
    ) -> None:
        """Write items ``[lo, hi)`` of ``fields``/``raw`` to slots ``slot, slot + 1, ...``."""
        end = slot + hi - lo
        for name, value in fields.items():
            self._fields[name][slot:end].copy_(value[lo:hi])
        if self._host:
            part_np = self._raw_np[slot:end]
            part_np[:] = raw[lo:hi]
            self._generations_np[slot:end] += 1
            self._tree.write_range(slot, self._leaves_host(part_np), part_np)
        else:
            part = raw[lo:hi]
            self._raw[slot:end] = part
            self._generations[slot:end] += 1
            self._tree.write_range(slot, self._leaves_device(part), part)

    def replace(self, slots: Tensor, priorities: Tensor | None = None, **fields: Tensor) -> Tensor:
        """Overwrite chosen live slots with new items (all fields required).

        Args:
            slots: ``(n,)`` distinct integer slots in ``[0, len)``.
            priorities: Optional ``(n,)`` raw priorities; default: the current maximum.
            **fields: The stored fields, each ``(n, *item_shape)``.

        Returns:
            The ``(n,)`` int64 slots written.

        Raises:
            IndexError: A slot is not live (with ``validate``).
            ValueError: Repeated slots (with ``validate``), shapes, fields or priorities.
        """
        if not self._fields:
            raise ValueError("Expected a non-empty buffer to replace items in, got len 0")
        if self.validate:
            slots = check_index_tensor("slots", slots, self._size, self._device)
            if slots.numel() != torch.unique(slots).numel():
                raise ValueError(f"Expected `slots` to be distinct, got {slots.tolist()}")
        else:
            slots = check_index_shape("slots", slots, self._device)
        n = check_fields(fields, self._fields, self._capacity, "replace")
        if n != slots.shape[0]:
            raise ValueError(f"Expected fields with {slots.shape[0]} rows (one per slot), got {n}")
        raw = self._new_raw(priorities, n)
        if self._host:
            raw = torch.from_numpy(np.ascontiguousarray(raw))
        for name, value in fields.items():
            self._fields[name].index_copy_(0, slots, value.to(self._device))
        self._raw.index_copy_(0, slots, raw)
        self._generations.index_add_(0, slots, torch.ones_like(slots))
        self._tree.write(slots, self._leaves_device(raw), raw)
        return slots

    def update_priorities(
        self, indices: Tensor, priorities: Tensor, *, generations: Tensor | None = None
    ) -> None:
        """Set raw priorities of sampled slots.

        Args:
            indices: ``(B,)`` slots (``PrioritySample.indices``); duplicates: last write wins.
            priorities: ``(B,)`` finite, non-negative raw priorities (detached, float64).
            generations: Optional ``(B,)`` generations from the sample; an update whose
                slot has been rewritten since (generation differs) is dropped.

        Raises:
            TypeError: Non-tensor or wrongly typed arguments.
            ValueError: Shape mismatches or bad priorities (with ``validate``: NaN/inf/< 0).
            IndexError: (with ``validate``) an index outside ``[0, len)``.
        """
        indices = check_index_shape("indices", indices, self._device)
        raw = check_priority_shape("priorities", priorities, indices.shape[0], self._device)
        gens = None
        if generations is not None:
            gens = check_index_shape("generations", generations, self._device)
            if gens.shape != indices.shape:
                raise ValueError(
                    f"Expected `generations` to have shape {tuple(indices.shape)}, "
                    f"got {tuple(gens.shape)}"
                )
        if indices.numel() == 0:
            return
        if self._host:
            self._update_host(indices.numpy(), raw.numpy(), None if gens is None else gens.numpy())
            return
        if self.validate:
            check_index_tensor("indices", indices, self._size, self._device)
            check_priority_values("priorities", raw, raw.shape[0], self._device)
        valid = None if gens is None else self._generations[indices] == gens
        winner = last_write_positions(indices, valid)
        new_raw = raw[winner]
        if valid is not None:
            # A stale winner means no valid write for that slot: keep its current value.
            new_raw = torch.where(valid[winner], new_raw, self._raw[indices])
        self._raw.index_copy_(0, indices, new_raw)
        self._tree.write(indices, self._leaves_device(new_raw), new_raw)

    def _update_host(self, idx: np.ndarray, raw: np.ndarray, gens: np.ndarray | None) -> None:
        if self.validate:
            # Two reductions each; NaN fails both comparisons. The torch checks rerun only
            # to build the error message.
            if not (idx.min() >= 0 and idx.max() < self._size):
                check_index_tensor("indices", torch.from_numpy(idx), self._size, self._device)
            if not (raw.min() >= 0 and raw.max() < math.inf):
                check_priority_values("priorities", torch.from_numpy(raw), raw.size, self._device)
        stored_raw = self._raw_np
        valid = None if gens is None else self._generations_np.take(idx) == gens
        winner = last_write_positions_host(idx, valid)
        new_raw = raw.take(winner)
        if valid is not None:
            # A stale winner means no valid write for that slot: keep its current value.
            new_raw = np.where(valid.take(winner), new_raw, stored_raw.take(idx))
        stored_raw[idx] = new_raw
        self._tree.write_host(idx, self._leaves_host(new_raw), new_raw)

    # ----------------------------------------------------------------- sampling
    def sample(self, batch_size: int) -> PrioritySample:
        """Draw ``batch_size`` items with ``P(i) = leaf_i / total`` (with replacement).

        Args:
            batch_size: Number of draws B ≥ 1.

        Returns:
            A :class:`PrioritySample`.

        Raises:
            ValueError: ``batch_size < 1`` or the buffer is empty.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"Expected `batch_size` to be an int >= 1, got {batch_size!r}")
        if self._size == 0:
            raise ValueError("Expected a non-empty buffer to sample from, got len 0")
        u = torch.rand(
            batch_size, dtype=torch.float64, device=self._device, generator=self._generator
        )
        if self.stratified:
            u = (torch.arange(batch_size, device=self._device) + u) / batch_size
        # Sorted masses give the same multiset of i.i.d. draws, returned in slot order; the
        # searches then hit nearby nodes in turn (several times faster than random keys).
        if self._host:
            u_host = u.numpy()
            u_host.sort()
            return self._sample_host(u_host)
        u = torch.sort(u).values
        total = self._tree.total
        indices = self._tree.find(u * total, validate=False)
        leaves = self._tree.leaves.index_select(0, indices)
        min_leaf = self._tree.min if self.weight_norm == "max" else leaves.min()
        weights = importance_weights(leaves, min_leaf, self._beta)
        if self.weight_norm == "mean":
            weights = weights / weights.mean()
        return PrioritySample(
            data={name: value.index_select(0, indices) for name, value in self._fields.items()},
            indices=indices,
            weights=weights.to(torch.get_default_dtype()),
            probabilities=sampling_probabilities(leaves, total),
            generations=self._generations.index_select(0, indices),
        )

    def _sample_host(self, u: np.ndarray) -> PrioritySample:
        """:meth:`sample` on numpy views (same numbers as the torch path, fewer µs)."""
        tree = self._tree
        total = tree.prefix_sums().numpy()[-1]
        idx = tree.find_host(u * total)
        leaves = self._leaves_np.take(idx)
        min_leaf = tree.min_host() if self.weight_norm == "max" else float(leaves.min())
        weights = importance_weights_host(leaves, min_leaf, self._beta)
        if self.weight_norm == "mean":
            weights /= weights.mean()
        indices = torch.from_numpy(idx)
        return PrioritySample(
            data={name: value.index_select(0, indices) for name, value in self._fields.items()},
            indices=indices,
            weights=torch.from_numpy(weights).to(torch.get_default_dtype()),
            probabilities=torch.from_numpy(leaves / total),
            generations=torch.from_numpy(self._generations_np.take(idx)),
        )

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: tensors, numbers and strings only.

        Loads with ``torch.load(..., weights_only=True)``. Holds the schema version,
        capacity, hyper-parameters, size, cursor, stored fields, raw priorities,
        generations, the tree's leaves (stored rather than recomputed: ``torch.pow`` may
        differ by an ulp between its vectorised and scalar paths, and a reload must be
        bit-identical) and the generator state.
        """
        return {
            "schema_version": SCHEMA_VERSION,
            "capacity": self._capacity,
            "alpha": self._alpha,
            "beta": self._beta,
            "eps": self._eps,
            "weight_norm": self.weight_norm,
            "stratified": self.stratified,
            "size": self._size,
            "cursor": self._cursor,
            "fields": {name: value.clone() for name, value in self._fields.items()},
            "raw_priorities": self._raw.clone(),
            "leaves": self._tree.leaves.clone(),
            "generations": self._generations.clone(),
            "generator_state": self._generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the capacity and schema version must match.

        Raises:
            ValueError: Different capacity or schema, missing keys or inconsistent values
                (the buffer is then unchanged).
        """
        check_state(state, self._capacity)
        self._generator.set_state(state["generator_state"])
        self._alpha = float(state["alpha"])
        self._beta = float(state["beta"])
        self._eps = float(state["eps"])
        self.weight_norm = str(state["weight_norm"])
        self.stratified = bool(state["stratified"])
        self._size = int(state["size"])
        self._cursor = int(state["cursor"])
        self._fields = {k: v.to(self._device).clone() for k, v in state["fields"].items()}
        # Copy into the existing tensors: the CPU fast path holds numpy views of them.
        self._raw.copy_(state["raw_priorities"])
        self._generations.copy_(state["generations"])
        leaves = state["leaves"][: self._size].to(self._device, torch.float64)
        live = self._raw[: self._size]
        if self._host:
            self._tree.rebuild(leaves.numpy(), live.numpy())
        else:
            self._tree.rebuild(leaves, live)

    # ----------------------------------------------------------------- helpers
    def _rebuild_trees(self) -> None:
        live = self._raw[: self._size]
        if self._host:
            self._tree.rebuild(self._leaves_host(live.numpy()), live.numpy())
        else:
            self._tree.rebuild(self._leaves_device(live), live)

    def _leaves_host(self, raw: np.ndarray) -> np.ndarray:
        return priority_leaves_host(raw, self._alpha, self._eps)

    def _leaves_device(self, raw: Tensor) -> Tensor:
        return priority_leaves(raw, self._alpha, self._eps)

    def _max_priority(self) -> Tensor:
        """Maximum raw priority present (1.0 when empty), 0-dim float64, no sync."""
        if self._size == 0:
            return torch.ones((), dtype=torch.float64, device=self._device)
        return self._tree.max_key

    def _new_raw(self, priorities: Tensor | None, n: int) -> Any:
        """Checked raw priorities of new items: numpy on CPU, a tensor on other devices."""
        if priorities is None:
            if self._host:
                return np.full(n, self._tree.max_key_host() if self._size else 1.0)
            return self._max_priority().expand(n)
        if self.validate:
            raw = check_priority_values("priorities", priorities, n, self._device)
        else:
            raw = check_priority_shape("priorities", priorities, n, self._device)
        return raw.numpy() if self._host else raw


def _check_unit(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"Expected `{name}` to be a float in [0, 1], got {value!r}")

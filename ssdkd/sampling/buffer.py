"""PriorityBuffer: fixed-capacity storage of named tensors with prioritized sampling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ssdkd.sampling._checks import check_index_shape, check_priority_shape
from ssdkd.sampling._state import SCHEMA_VERSION, check_state
from ssdkd.sampling.sampler import PrioritySampler
from ssdkd.sampling.storage import FieldStorage
from ssdkd.sampling.sum_tree import SumTree

__all__ = ["PriorityBuffer", "PrioritySample"]


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

    A :class:`~ssdkd.sampling.FieldStorage` (the items) composed with a
    :class:`~ssdkd.sampling.PrioritySampler` (the priorities); each is usable alone.
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
        weight_norm: ``"mean"`` (default: one near-zero priority cannot collapse the
            weights), ``"batch"`` or ``"max"`` (the PER paper's); see above.
        stratified: Draw one mass per equal stratum of the total instead of independently.
        validate: Check values of inputs (syncs on CUDA); see above.
        host: Run on numpy views (default: exactly on CPU); ``False`` runs the device code
            path on CPU tensors, which the tests compare.

    Examples:
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
        weight_norm: str = "mean",
        stratified: bool = False,
        validate: bool = True,
        host: bool | None = None,
    ) -> None:
        self._sampler = PrioritySampler(
            capacity,
            alpha=alpha,
            beta=beta,
            eps=eps,
            device=device,
            generator=generator,
            weight_norm=weight_norm,
            stratified=stratified,
            validate=validate,
            host=host,
        )
        self._storage = FieldStorage(capacity, device=self._sampler.device, host=host)
        self.ops = self._sampler.ops

    # ----------------------------------------------------------------- parts
    @property
    def sampler(self) -> PrioritySampler:
        """The priorities and their draws (read it; write through the buffer)."""
        return self._sampler

    @property
    def storage(self) -> FieldStorage:
        """The stored items (read it; write through the buffer)."""
        return self._storage

    # ----------------------------------------------------------------- properties
    @property
    def capacity(self) -> int:
        """Number of slots."""
        return self._storage.capacity

    @property
    def device(self) -> torch.device:
        """Device of storage, tree and generator."""
        return self._storage.device

    @property
    def tree(self) -> SumTree:
        """The sum tree over the leaves ``(p + ε)^α`` (read it; write through the buffer)."""
        return self._sampler.tree

    @property
    def data(self) -> dict[str, Tensor]:
        """Stored fields of the live slots, ``(len, *shape)`` views (do not write to them)."""
        return self._storage.data

    @property
    def eps(self) -> float:
        """Offset ε added to raw priorities."""
        return self._sampler.eps

    @property
    def alpha(self) -> float:
        """Prioritisation exponent α; setting it rebuilds every leaf from its raw priority."""
        return self._sampler.alpha

    @alpha.setter
    def alpha(self, value: float) -> None:
        self._sampler.alpha = value

    @property
    def beta(self) -> float:
        """Importance-sampling exponent β in [0, 1]."""
        return self._sampler.beta

    @beta.setter
    def beta(self, value: float) -> None:
        self._sampler.beta = value

    @property
    def weight_norm(self) -> str:
        """Normalisation of the importance weights: ``"max"``, ``"batch"`` or ``"mean"``."""
        return self._sampler.weight_norm

    @weight_norm.setter
    def weight_norm(self, value: str) -> None:
        self._sampler.weight_norm = value

    @property
    def stratified(self) -> bool:
        """Whether draws are stratified (one per equal-mass stratum)."""
        return self._sampler.stratified

    @stratified.setter
    def stratified(self, value: bool) -> None:
        self._sampler.stratified = bool(value)

    @property
    def validate(self) -> bool:
        """Whether input values are checked (a host sync on CUDA)."""
        return self._sampler.validate

    @validate.setter
    def validate(self, value: bool) -> None:
        self._sampler.validate = bool(value)

    def __len__(self) -> int:
        return len(self._storage)

    def __repr__(self) -> str:
        return (
            f"PriorityBuffer(len={len(self)}, capacity={self.capacity}, alpha={self.alpha}, "
            f"beta={self.beta}, eps={self.eps}, fields={sorted(self.data)}, "
            f"device={self.device})"
        )

    def priorities(self, indices: Tensor | None = None) -> Tensor:
        """Raw priorities, float64 (a copy): of the live slots ``(len,)``, or of ``indices``.

        Args:
            indices: Optional ``(B,)`` slots (e.g. ``PrioritySample.indices``); only their
                priorities are gathered, without copying the whole buffer's.
        """
        return self._sampler.priorities(indices)

    def class_counts(self, field: str, num_classes: int) -> Tensor:
        """Histogram of an integer field over the live slots, ``(num_classes,)`` int64;
        see :meth:`FieldStorage.class_counts <ssdkd.sampling.FieldStorage.class_counts>`
        (values are checked with :attr:`validate`)."""
        return self._storage.class_counts(field, num_classes, validate=self.validate)

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
        storage, sampler = self._storage, self._sampler
        n = storage.check(fields)
        raw = sampler.check_new(priorities, n)
        start = storage.cursor
        slots = storage.extend_unchecked(fields, n)
        first = min(n, self.capacity - start)
        if first:
            sampler.set_range(start, raw[:first])
        if first < n:
            sampler.set_range(0, raw[first:])
        return slots

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
        storage = self._storage
        n = storage.check_replace(slots, fields)
        slots = storage.check_slots(slots, validate=self.validate)
        raw = self._sampler.check_new(priorities, n)
        storage.replace_unchecked(slots, fields)
        self._sampler.set_unchecked(self.ops.view(slots), raw)
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
        device, ops, sampler = self.device, self.ops, self._sampler
        indices = check_index_shape("indices", indices, device)
        raw = check_priority_shape("priorities", priorities, indices.shape[0], device)
        valid = None
        if generations is not None:
            gens = check_index_shape("generations", generations, device)
            if gens.shape != indices.shape:
                raise ValueError(
                    f"Expected `generations` to have shape {tuple(indices.shape)}, "
                    f"got {tuple(gens.shape)}"
                )
        index_array, raw_array = ops.view(indices), ops.view(raw)
        sampler.check_update(index_array, raw_array)
        if generations is not None and indices.numel():
            stored = ops.take(self._storage.generation_array, index_array)
            valid = stored == ops.view(gens)
        sampler.update_unchecked(index_array, raw_array, valid)

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
        draw = self._sampler.sample_array(batch_size)
        ops = self.ops
        indices = ops.tensor(draw.indices)
        return PrioritySample(
            data=self._storage.gather(indices),
            indices=indices,
            weights=ops.tensor_as(draw.weights, torch.get_default_dtype()),
            probabilities=ops.tensor(draw.probabilities),
            generations=ops.tensor(ops.take(self._storage.generation_array, draw.indices)),
        )

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: tensors, numbers and strings only.

        Loads with ``torch.load(..., weights_only=True)``. Holds the schema version,
        capacity, hyper-parameters, size, cursor, stored fields, raw priorities,
        generations, the tree's leaves (stored rather than recomputed: ``pow`` may differ
        by an ulp between its vectorised and scalar paths, and a reload must be
        bit-identical) and the generator state.
        """
        return {
            "schema_version": SCHEMA_VERSION,
            "capacity": self.capacity,
            **self._sampler.state_dict(),
            **self._storage.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the capacity and schema version must match.

        Raises:
            ValueError: Different capacity or schema, missing keys or inconsistent values
                (the buffer is then unchanged).
        """
        check_state(state, self.capacity, self._sampler.generator)
        self._sampler.load_state_dict(state)
        self._storage.load_state_dict(state)

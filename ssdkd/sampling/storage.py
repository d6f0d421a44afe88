"""FieldStorage: fixed-capacity storage of named tensors, filled as a ring."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ssdkd.sampling._backend import Array, ops_for
from ssdkd.sampling._checks import check_fields, check_slots
from ssdkd.sampling._state import check_storage_state

__all__ = ["FieldStorage"]


class FieldStorage:
    """Named tensors in ``capacity`` slots, written as a ring, with a write counter per slot.

    * The first write fixes the field names, item shapes and dtypes; later writes must match.
    * :meth:`extend` fills slots from 0 upwards and, once full, overwrites the oldest
      (FIFO); :meth:`replace` overwrites chosen live slots.
    * Every write of a slot increments its *generation*, so a reader holding a slot index
      can tell whether the item it saw is still there (see
      :meth:`PriorityBuffer.update_priorities <ssdkd.sampling.PriorityBuffer.update_priorities>`).
    * Every rejected call leaves the storage bit-identical (all checks precede all writes).

    Args:
        capacity: Number of slots, ≥ 1.
        device: Device of the stored tensors (default CPU).

    Examples:
        >>> import torch
        >>> store = FieldStorage(3)
        >>> store.extend(x=torch.tensor([10, 11]), y=torch.zeros(2, 4))
        tensor([0, 1])
        >>> store.extend(x=torch.tensor([12, 13]), y=torch.ones(2, 4))
        tensor([2, 0])
        >>> store.data["x"], store.generations.tolist()
        (tensor([13, 11, 12]), [2, 1, 1])
        >>> store.gather(torch.tensor([2]))["y"].shape
        torch.Size([1, 4])
    """

    def __init__(
        self, capacity: int, *, device: torch.device | str | None = None, host: bool | None = None
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"Expected `capacity` to be an int >= 1, got {capacity!r}")
        self._device = torch.device(device) if device is not None else torch.device("cpu")
        self.ops = ops_for(self._device, host=host)
        self._capacity = capacity
        self._fields: dict[str, Tensor] = {}
        self._generations = torch.zeros(capacity, dtype=torch.int64, device=self._device)
        self.generation_array: Array = self.ops.view(self._generations)
        """The generations as an array of :attr:`ops` (read only)."""
        self._size = 0
        self._cursor = 0

    @property
    def capacity(self) -> int:
        """Number of slots."""
        return self._capacity

    @property
    def device(self) -> torch.device:
        """Device of the stored tensors."""
        return self._device

    @property
    def cursor(self) -> int:
        """The slot the next :meth:`extend` writes first."""
        return self._cursor

    @property
    def data(self) -> dict[str, Tensor]:
        """Stored fields of the live slots, ``(len, *shape)`` views (do not write to them)."""
        return {name: value[: self._size] for name, value in self._fields.items()}

    @property
    def generations(self) -> Tensor:
        """Write counters of every slot, ``(capacity,)`` int64 (a view; do not write)."""
        return self._generations

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return (
            f"FieldStorage(len={self._size}, capacity={self._capacity}, "
            f"fields={sorted(self._fields)}, device={self._device})"
        )

    def check(self, fields: dict[str, Tensor], method: str = "extend") -> int:
        """Check ``fields`` against the stored schema (metadata only); return their rows.

        Raises:
            TypeError: A field is not a tensor or has another dtype than stored.
            ValueError: Missing/extra fields, mismatched shapes or more rows than capacity.
        """
        return check_fields(fields, self._fields, self._capacity, method)

    def extend(self, **fields: Tensor) -> Tensor:
        """Append items, overwriting the oldest ones once full (FIFO).

        Args:
            **fields: Named tensors with the same leading dimension ``n ≤ capacity``.

        Returns:
            ``(n,)`` int64 slots written.

        Raises:
            TypeError, ValueError: See :meth:`check`.
        """
        return self.extend_unchecked(fields, self.check(fields))

    def extend_unchecked(self, fields: dict[str, Tensor], n: int) -> Tensor:
        """:meth:`extend` for callers that ran :meth:`check` (which returned ``n``)."""
        if n == 0:
            return torch.zeros(0, dtype=torch.int64, device=self._device)
        if not self._fields:
            self._fields = {
                # Zeros, not empty: unwritten slots must not leak old memory into checkpoints.
                name: torch.zeros(
                    (self._capacity, *value.shape[1:]), dtype=value.dtype, device=self._device
                )
                for name, value in fields.items()
            }
        start = self._cursor
        first = min(n, self._capacity - start)
        slots = self.ops.arange(n) + start
        if first == n:
            self._write_range(start, fields)
        else:
            self._write_range(start, {k: v.narrow(0, 0, first) for k, v in fields.items()})
            self._write_range(0, {k: v.narrow(0, first, n - first) for k, v in fields.items()})
            slots %= self._capacity
        self._cursor = (start + n) % self._capacity
        self._size = min(self._capacity, self._size + n)
        return self.ops.tensor(slots)

    def _write_range(self, slot: int, rows: dict[str, Tensor]) -> None:
        """Write ``rows`` (each ``(m, *item_shape)``) to slots ``slot, ..., slot + m - 1``."""
        m = 0
        for name, value in rows.items():
            m = value.shape[0]
            self._fields[name].narrow(0, slot, m).copy_(value)
        self.generation_array[slot : slot + m] += 1

    def check_slots(self, slots: Tensor, *, validate: bool = True) -> Tensor:
        """``slots`` as int64 on :attr:`device`, checked to be distinct live slots.

        Args:
            slots: ``(n,)`` integer slots.
            validate: Also check values (a host sync on CUDA); shape and dtype always.

        Raises:
            TypeError: Not an integer tensor.
            ValueError: Not 1-D, or repeated slots (with ``validate``).
            IndexError: A slot outside ``[0, len)`` (with ``validate``).
        """
        return check_slots(slots, self._size, self._device, validate=validate)

    def replace(self, slots: Tensor, **fields: Tensor) -> Tensor:
        """Overwrite chosen live slots with new items (all fields required).

        Args:
            slots: ``(n,)`` distinct integer slots in ``[0, len)``.
            **fields: The stored fields, each ``(n, *item_shape)``.

        Returns:
            The ``(n,)`` int64 slots written.

        Raises:
            IndexError: A slot is not live.
            ValueError: Empty storage, repeated slots, shapes or fields.
        """
        self.check_replace(slots, fields)
        slots = self.check_slots(slots)
        self.replace_unchecked(slots, fields)
        return slots

    def check_replace(self, slots: Tensor, fields: dict[str, Tensor]) -> int:
        """The metadata checks of :meth:`replace`; returns the number of rows."""
        if not self._fields:
            raise ValueError("Expected a non-empty buffer to replace items in, got len 0")
        n = self.check(fields, "replace")
        rows = slots.shape[0] if isinstance(slots, Tensor) and slots.dim() == 1 else None
        if rows is not None and n != rows:
            raise ValueError(f"Expected fields with {rows} rows (one per slot), got {n}")
        return n

    def replace_unchecked(self, slots: Tensor, fields: dict[str, Tensor]) -> None:
        """:meth:`replace` for callers that checked ``slots`` and ``fields``."""
        for name, value in fields.items():
            self._fields[name].index_copy_(0, slots, value.to(self._device))
        self._generations.index_add_(0, slots, torch.ones_like(slots))

    def gather(self, indices: Tensor) -> dict[str, Tensor]:
        """Each field's rows at ``indices`` (unchecked ``(B,)`` int64 on :attr:`device`)."""
        return {name: value.index_select(0, indices) for name, value in self._fields.items()}

    def class_counts(self, field: str, num_classes: int, *, validate: bool = True) -> Tensor:
        """Histogram of an integer ``(capacity,)`` field over the live slots.

        Args:
            field: Name of a stored integer field with one value per item.
            num_classes: Length of the histogram, ≥ 1.
            validate: Check that values lie in ``[0, num_classes)`` (a host sync on CUDA).

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
        if validate and values.numel():
            bad = (values < 0) | (values >= num_classes)
            if bool(bad.any()):
                first = int(bad.nonzero()[0, 0])
                raise ValueError(
                    f"Expected `{field}` values in [0, {num_classes}), got "
                    f"{int(values[first])} at slot {first}"
                )
        counts = torch.zeros(num_classes, dtype=torch.int64, device=self._device)
        return counts.index_add_(0, values, torch.ones_like(values))

    def state_dict(self) -> dict[str, Any]:
        """Size, cursor, fields and generations (tensors and ints; ``weights_only`` loads)."""
        return {
            "size": self._size,
            "cursor": self._cursor,
            "fields": {name: value.clone() for name, value in self._fields.items()},
            "generations": self._generations.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`.

        Raises:
            ValueError: Missing keys or inconsistent values (the storage is then unchanged).
        """
        check_storage_state(state, self._capacity)
        self._size = int(state["size"])
        self._cursor = int(state["cursor"])
        self._fields = {k: v.to(self._device).clone() for k, v in state["fields"].items()}
        # Copy into the existing tensor: the array view shares its memory.
        self._generations.copy_(state["generations"])

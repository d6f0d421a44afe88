"""FeatureBank: a fixed-size store of feature vectors drawn uniformly (a memory bank)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ssdkd.sampling.storage import FieldStorage

__all__ = ["FeatureBank"]


class FeatureBank:
    """Named feature tensors in ``capacity`` slots (oldest overwritten once full), drawn
    uniformly: the memory bank of a contrastive loss, e.g. CMI's (local view, global view)
    feature pairs, from which each step draws its negatives.

    A thin layer over :class:`FieldStorage` (which holds the fields and their write
    counters) adding uniform draws without replacement from the live slots.

    Args:
        capacity: Number of slots, ≥ 1 (CMI: 40,960).
        device: Device of the stored tensors (default CPU).
        generator: Random source of the draws (default: a fresh unseeded one).

    Examples:
        >>> bank = FeatureBank(4, generator=torch.Generator().manual_seed(0))
        >>> bank.push(local=torch.ones(3, 2), global_=torch.zeros(3, 2))
        tensor([0, 1, 2])
        >>> bank.push(local=torch.full((2, 2), 2.0), global_=torch.zeros(2, 2))
        tensor([3, 0])
        >>> len(bank), bank.sample(3)["local"].shape
        (4, torch.Size([3, 2]))
    """

    def __init__(
        self,
        capacity: int,
        *,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        self.storage = FieldStorage(capacity, device=device)
        self.generator = generator if generator is not None else torch.Generator(device=device)

    @property
    def capacity(self) -> int:
        """Number of slots."""
        return self.storage.capacity

    @property
    def data(self) -> dict[str, Tensor]:
        """The stored fields of the live slots, ``(len, ...)`` views (do not write)."""
        return self.storage.data

    def __len__(self) -> int:
        return len(self.storage)

    def __repr__(self) -> str:
        return f"FeatureBank(capacity={self.capacity}, size={len(self)})"

    def push(self, **fields: Tensor) -> Tensor:
        """Store a batch of items (the same fields, shapes and dtypes every time); returns
        the slots written. See :meth:`FieldStorage.extend`."""
        return self.storage.extend(**fields)

    def sample(self, count: int) -> dict[str, Tensor]:
        """``count`` distinct live items, each set of ``count`` equally likely.

        Raises:
            ValueError: ``count`` < 0 or more than the items stored.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"Expected `count` to be an int >= 0, got {count!r}")
        if count > len(self):
            raise ValueError(f"Expected `count` <= the {len(self)} items stored, got {count}")
        slots = torch.randperm(len(self), generator=self.generator, device=self.generator.device)
        return self.storage.gather(slots[:count].to(self.storage.device))

    def state_dict(self) -> dict[str, Any]:
        """The storage's state and the generator's (tensors and ints; ``weights_only``
        loads)."""
        return {"storage": self.storage.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`.

        Raises:
            ValueError: Missing keys or inconsistent values (the bank is then unchanged).
        """
        if not isinstance(state, dict) or set(state) != {"storage", "generator"}:
            keys = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(
                f"Expected a FeatureBank state with keys storage, generator, got {keys}"
            )
        generator_state = state["generator"]
        if not isinstance(generator_state, Tensor) or generator_state.dtype != torch.uint8:
            raise ValueError("Expected `generator` in the state to be a uint8 tensor")
        self.storage.load_state_dict(state["storage"])
        self.generator.set_state(generator_state)

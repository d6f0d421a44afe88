"""reservoir_slots: Algorithm R in batches, against a sequential reference and in law."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ssdkd.sampling import reservoir_slots


def _sequential(first_index: int, count: int, capacity: int, seed: int) -> dict[int, int]:
    """Algorithm R one item at a time, from the same uniform draws: slot -> batch row."""
    draws = torch.rand(count, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    written: dict[int, int] = {}
    for row in range(count):
        slot = int(np.floor(float(draws[row]) * (first_index + row + 1)))
        if slot < capacity:
            written[slot] = row
    return written


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(1, 40),
    offset=st.integers(0, 200),
    count=st.integers(0, 80),
    seed=st.integers(0, 2**31 - 1),
)
def test_a_batch_writes_what_the_sequential_algorithm_leaves(
    capacity: int, offset: int, count: int, seed: int
) -> None:
    """Slots drawn twice in one batch keep the later item, as one-at-a-time Algorithm R."""
    first = capacity + offset
    generator = torch.Generator().manual_seed(seed)
    rows, slots = reservoir_slots(first, count, capacity, generator=generator)
    assert rows.dtype == slots.dtype == torch.int64
    assert torch.equal(rows, rows.sort().values)
    assert len(torch.unique(slots)) == len(slots)
    assert dict(zip(slots.tolist(), rows.tolist(), strict=True)) == _sequential(
        first, count, capacity, seed
    )


def test_every_item_of_the_stream_is_kept_with_the_same_probability() -> None:
    """After 640 items into 64 slots, early, middle and late items are each kept with
    probability 64/640 = 0.1 (the FIFO ring would keep only the last 64)."""
    capacity, batch, total, repeats = 64, 16, 640, 300
    kept = np.zeros(total)
    generator = torch.Generator().manual_seed(0)
    for _ in range(repeats):
        buffer = np.arange(capacity)  # the first items fill the free slots
        for first in range(capacity, total, batch):
            rows, slots = reservoir_slots(first, batch, capacity, generator=generator)
            buffer[slots.numpy()] = first + rows.numpy()
        kept[buffer] += 1
    share = kept / repeats
    for part in np.split(share, 10):  # ten stretches of the stream, 64 items each
        assert part.mean() == pytest.approx(0.1, abs=0.01)


def test_rows_and_slots_land_on_the_requested_device() -> None:
    rows, slots = reservoir_slots(
        10, 5, 10, generator=torch.Generator().manual_seed(1), device="cpu"
    )
    assert rows.device == slots.device == torch.device("cpu")


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((5, 3, 10), ValueError, "`first_index` >= `capacity` (10)"),
        ((10, -1, 10), ValueError, "`count` to be >= 0, got -1"),
        ((10, 3, 0), ValueError, "`capacity` to be >= 1, got 0"),
        ((10.0, 3, 4), TypeError, "`first_index` to be an int, got 10.0"),
        ((10, True, 4), TypeError, "`count` to be an int, got True"),
    ],
)
def test_bad_arguments_name_the_argument(args: tuple, error: type, message: str) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        reservoir_slots(*args)

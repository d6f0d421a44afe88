"""TransferPool: the order and content of a concatenated pool, at linear cost."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ssdkd.methods.common import TransferPool


@pytest.mark.property
@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(0, 12),
    batches=st.lists(st.integers(1, 7), min_size=1, max_size=12),
)
def test_the_pool_holds_what_concatenating_and_truncating_would(
    capacity: int, batches: list[int]
) -> None:
    """The model: every batch appended in order, then the last ``capacity`` kept."""
    pool = TransferPool(capacity, torch.Generator().manual_seed(0))
    model = torch.zeros(0, dtype=torch.long)
    start = 0
    for size in batches:
        values = torch.arange(start, start + size)
        start += size
        pool.add(values.float().view(size, 1, 1, 1), values)
        model = torch.cat([model, values])
        if capacity:
            model = model[-capacity:]
        assert pool.labels is not None
        assert pool.images is not None
        assert pool.labels.tolist() == model.tolist()
        assert pool.images.view(-1).long().tolist() == model.tolist()
        assert len(pool) == len(model)


def test_growing_the_pool_reallocates_a_logarithmic_number_of_times() -> None:
    """Prevents quadratic copying: the pool used to concatenate all its images with each
    new batch, copying the whole pool every round (about 690 MB a round at Fast-DFKD's
    CIFAR scale)."""
    pool = TransferPool(0, torch.Generator().manual_seed(0))
    storages = set()
    for round_index in range(200):
        pool.add(torch.full((8, 1, 2, 2), float(round_index)), torch.zeros(8, dtype=torch.long))
        assert pool.images is not None
        storages.add(pool.images.untyped_storage().data_ptr())
    assert len(pool) == 1600
    assert len(storages) <= 9  # 8 → 16 → ... → 2048: eight doublings after the first


def test_a_checkpoint_holds_the_live_images_only() -> None:
    pool = TransferPool(0, torch.Generator().manual_seed(0))
    for _ in range(3):
        pool.add(torch.zeros(5, 1, 2, 2), torch.zeros(5, dtype=torch.long))
    state = pool.state_dict()
    [block] = state["images"]
    assert block.shape[0] == 15
    assert block.untyped_storage().nbytes() == 15 * 4 * 4
    copy = TransferPool(0, torch.Generator().manual_seed(1))
    copy.load_state_dict(state)
    assert len(copy) == 15
    copy.add(torch.ones(2, 1, 2, 2), torch.ones(2, dtype=torch.long))
    assert copy.labels is not None
    assert copy.labels.tolist() == [0] * 15 + [1, 1]


def test_the_checkpointed_blocks_of_a_growing_pool_stay_the_same(monkeypatch) -> None:
    """Each block but the last is unchanged when the pool grows, so a checkpoint store
    that writes a tensor once per content writes only the new block."""
    monkeypatch.setattr(TransferPool, "BLOCK", 4)
    pool = TransferPool(0, torch.Generator().manual_seed(0))
    pool.add(torch.arange(6.0).view(6, 1, 1, 1), torch.zeros(6, dtype=torch.long))
    first = pool.state_dict()["images"]
    pool.add(torch.arange(6.0, 9.0).view(3, 1, 1, 1), torch.zeros(3, dtype=torch.long))
    second = pool.state_dict()["images"]
    assert [b.shape[0] for b in first] == [4, 2]
    assert [b.shape[0] for b in second] == [4, 4, 1]
    assert torch.equal(first[0], second[0])
    copy = TransferPool(0, torch.Generator().manual_seed(1))
    copy.load_state_dict(pool.state_dict())
    assert copy.images is not None
    assert copy.images.flatten().tolist() == list(range(9))

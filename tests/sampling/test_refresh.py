"""admit: a full buffer's refresh policies, usable without any method."""

from __future__ import annotations

import pytest
import torch

from ssdkd.sampling import PriorityBuffer, admit


def _buffer(capacity: int = 4) -> PriorityBuffer:
    return PriorityBuffer(capacity, generator=torch.Generator().manual_seed(0))


def test_fifo_replaces_the_oldest_entries() -> None:
    buffer = _buffer()
    admit(buffer, {"x": torch.arange(4)})
    admit(buffer, {"x": torch.tensor([10, 11])})
    assert buffer.data["x"].tolist() == [10, 11, 2, 3]


def test_lowest_score_replaces_the_lowest_scored_entries_never_the_batch_own() -> None:
    buffer = _buffer()
    admit(buffer, {"x": torch.arange(3)})
    # Slot 3 is free: the batch fills it first, and its score 0 must not get it evicted.
    scores = torch.tensor([5.0, 1.0, 2.0, 0.0])
    admit(buffer, {"x": torch.tensor([7, 8])}, policy="lowest-score", scores=scores.clone)
    assert buffer.data["x"].tolist() == [0, 8, 2, 7]


def test_reservoir_keeps_a_uniform_sample_of_the_stream() -> None:
    counts = torch.zeros(40)
    for seed in range(300):
        buffer = _buffer()
        generator = torch.Generator().manual_seed(seed)
        for start in range(0, 40, 4):
            admit(
                buffer,
                {"x": torch.arange(start, start + 4)},
                policy="reservoir",
                offered_before=start,
                generator=generator,
            )
        counts[buffer.data["x"]] += 1
    share = counts / 300  # each of the 40 items should be kept with probability 4/40
    assert float(share[:8].mean()) == pytest.approx(0.1, abs=0.03)
    assert float(share[-8:].mean()) == pytest.approx(0.1, abs=0.03)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"policy": "random"}, "`policy` to be one of"),
        ({"policy": "reservoir"}, "`generator` for policy 'reservoir'"),
        ({"policy": "lowest-score"}, "`scores` for policy 'lowest-score'"),
    ],
)
def test_a_policy_without_what_it_needs_is_refused_before_any_write(kwargs, message) -> None:
    buffer = _buffer()
    with pytest.raises(ValueError, match=message):
        admit(buffer, {"x": torch.arange(2)}, **kwargs)
    assert len(buffer) == 0

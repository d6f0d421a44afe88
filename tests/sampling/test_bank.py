"""FeatureBank: a fixed-size memory bank drawn uniformly."""

from __future__ import annotations

import io

import pytest
import torch

from ssdkd.sampling import FeatureBank


def test_the_bank_keeps_its_capacity_and_overwrites_the_oldest() -> None:
    bank = FeatureBank(5, generator=torch.Generator().manual_seed(0))
    for start in range(0, 12, 3):
        bank.push(x=torch.arange(start, start + 3).float().unsqueeze(1))
    assert len(bank) == 5
    assert sorted(bank.data["x"].squeeze(1).tolist()) == [7.0, 8.0, 9.0, 10.0, 11.0]


def test_draws_are_distinct_live_items_and_uniform() -> None:
    bank = FeatureBank(10, generator=torch.Generator().manual_seed(1))
    bank.push(x=torch.arange(6).float())
    counts = torch.zeros(6)
    for _ in range(3000):
        drawn = bank.sample(3)["x"]
        assert len(set(drawn.tolist())) == 3  # without replacement, live slots only
        counts[drawn.long()] += 1
    expected = 3000 * 3 / 6
    assert float((counts - expected).abs().max()) < 0.08 * expected
    with pytest.raises(ValueError, match="`count` <= the 6 items stored"):
        bank.sample(7)
    with pytest.raises(ValueError, match="`count` to be an int >= 0"):
        bank.sample(-1)


def test_the_state_round_trips_through_a_weights_only_load() -> None:
    bank = FeatureBank(8, generator=torch.Generator().manual_seed(2))
    bank.push(local=torch.randn(5, 4), global_=torch.randn(5, 4))
    buffer = io.BytesIO()
    torch.save(bank.state_dict(), buffer)
    buffer.seek(0)
    restored = FeatureBank(8)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert len(restored) == 5
    for name in ("local", "global_"):
        assert torch.equal(restored.data[name], bank.data[name])
    # The same draws follow: the random state is part of the state.
    assert torch.equal(restored.sample(4)["local"], bank.sample(4)["local"])
    with pytest.raises(ValueError, match="keys storage, generator"):
        restored.load_state_dict({"storage": {}})

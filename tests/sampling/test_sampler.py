"""PrioritySampler alone, and the numpy (CPU) and torch (device) code paths against each other."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ssdkd.sampling import PriorityBuffer, PrioritySampler
from ssdkd.sampling._levels import TOP_WIDTH


def make(capacity: int = 8, seed: int = 0, **kwargs: object) -> PrioritySampler:
    return PrioritySampler(capacity, generator=torch.Generator().manual_seed(seed), **kwargs)  # type: ignore[arg-type]


def test_pairs_with_a_users_own_storage() -> None:
    """The sampler addresses slots only: any storage indexed by slot works with it."""
    images = torch.zeros(6, 3)
    sampler = make(6, alpha=1.0, beta=1.0)
    images[:4] = torch.arange(4, dtype=torch.float32)[:, None]
    sampler.set(torch.arange(4), torch.tensor([1.0, 1.0, 1.0, 7.0]))
    draws = torch.cat([sampler.sample(256).indices for _ in range(40)])
    share = (draws == 3).double().mean().item()
    # P(3) = (7 + ε) / (10 + 4ε) = 0.7; 10 240 draws put the share within ±0.02.
    assert share == pytest.approx(0.7, abs=0.02)
    draw = sampler.sample(5)
    assert images[draw.indices].shape == (5, 3)


def test_size_is_one_past_the_highest_live_slot_and_gaps_are_never_drawn() -> None:
    sampler = make(8)
    sampler.set(torch.tensor([0, 1]))
    sampler.set(torch.tensor([5]))
    assert sampler.size == 6
    drawn = torch.cat([sampler.sample(64).indices for _ in range(20)])
    assert set(drawn.tolist()) == {0, 1, 5}


def test_new_items_get_the_current_maximum_raw_priority() -> None:
    sampler = make(4, alpha=0.5)
    assert sampler.max_priority().item() == 1.0
    sampler.set(torch.tensor([0, 1]), torch.tensor([3.0, 9.0]))
    sampler.set(torch.tensor([2]))
    assert sampler.priorities().tolist() == [3.0, 9.0, 9.0]
    assert sampler.tree.leaves[2].item() == pytest.approx((9.0 + 1e-6) ** 0.5, rel=1e-15)


def test_update_keeps_the_last_valid_write_and_drops_invalid_ones() -> None:
    sampler = make(4)
    sampler.set(torch.arange(4), torch.ones(4))
    sampler.update(
        torch.tensor([0, 0, 1, 2, 2]),
        torch.tensor([5.0, 6.0, 7.0, 8.0, 9.0]),
        valid=torch.tensor([True, False, False, True, True]),
    )
    assert sampler.priorities().tolist() == [5.0, 1.0, 9.0, 1.0]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda s: s.set(torch.tensor([8])), IndexError, r"`slots` in \[0, 8\), got 8"),
        (lambda s: s.set(torch.tensor([4, 4])), ValueError, "distinct"),
        (
            lambda s: s.set(torch.tensor([4]), torch.tensor([float("nan")])),
            ValueError,
            "finite and >= 0, got nan at position 0",
        ),
        (
            lambda s: s.update(torch.tensor([3]), torch.ones(1)),
            IndexError,
            r"`indices` in \[0, 3\), got 3",
        ),
        (
            lambda s: s.update(torch.tensor([0]), torch.tensor([-1.0])),
            ValueError,
            "got -1.0 at position 0",
        ),
        (
            lambda s: s.update(torch.tensor([0]), torch.ones(1), valid=torch.ones(2, dtype=bool)),
            ValueError,
            r"`valid` to have shape \(1,\)",
        ),
        (lambda s: s.sample(0), ValueError, "`batch_size` to be an int >= 1, got 0"),
        (lambda s: setattr(s, "weight_norm", "sum"), ValueError, "`weight_norm` in"),
        (lambda s: setattr(s, "alpha", 2.0), ValueError, r"`alpha` to be a float in \[0, 1\]"),
        (lambda s: s.load_state_dict({"alpha": 0.5}), ValueError, "missing"),
    ],
)
def test_bad_input_raises_naming_it_and_changes_nothing(
    call: object, error: type[Exception], message: str
) -> None:
    sampler = make(8)
    sampler.set(torch.arange(3), torch.tensor([1.0, 2.0, 3.0]))
    before = sampler.state_dict()
    with pytest.raises(error, match=message):
        call(sampler)  # type: ignore[operator]
    after = sampler.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(after[key], value), key
        else:
            assert after[key] == value, key


def test_state_round_trip_continues_the_same_draws() -> None:
    sampler = make(16, alpha=0.7, beta=0.5, weight_norm="batch")
    sampler.set(torch.arange(10), torch.rand(10))
    blob = io.BytesIO()
    torch.save(sampler.state_dict(), blob)
    blob.seek(0)
    other = make(16, seed=99)
    other.load_state_dict(torch.load(blob, weights_only=True))
    a, b = sampler.sample(32), other.sample(32)
    assert torch.equal(a.indices, b.indices)
    assert torch.equal(a.weights, b.weights)


# --------------------------------------------------------------------------------------
# numpy (CPU fast path) against torch (the device path, run here on CPU tensors)


def run_both(capacity: int, seed: int, ops: list[tuple[str, object]]) -> None:
    """Apply the same calls to a host and a device-path buffer; compare after each."""
    kwargs: dict[str, object] = {"alpha": 0.6, "beta": 0.7, "weight_norm": "max"}
    buffers = [
        PriorityBuffer(capacity, generator=torch.Generator().manual_seed(seed), host=h, **kwargs)  # type: ignore[arg-type]
        for h in (True, False)
    ]
    counter = 0
    for op, arg in ops:
        if op == "extend":
            n, raw = arg  # type: ignore[misc]
            x = torch.arange(counter, counter + n)
            counter += n
            priorities = None if raw is None else torch.tensor(raw, dtype=torch.float64)
            slots = [b.extend(x=x, priorities=priorities) for b in buffers]
            assert torch.equal(slots[0], slots[1])
        elif op == "norm":
            for b in buffers:
                b.weight_norm = arg  # type: ignore[assignment]
        elif len(buffers[0]):
            batch, raw = arg  # type: ignore[misc]
            draws = [b.sample(batch) for b in buffers]
            assert torch.equal(draws[0].indices, draws[1].indices)
            assert torch.equal(draws[0].generations, draws[1].generations)
            assert torch.equal(draws[0].data["x"], draws[1].data["x"])
            torch.testing.assert_close(draws[0].weights, draws[1].weights, rtol=1e-12, atol=0)
            torch.testing.assert_close(
                draws[0].probabilities, draws[1].probabilities, rtol=1e-12, atol=0
            )
            new = torch.tensor(raw[:batch] + [0.5] * (batch - len(raw)), dtype=torch.float64)  # type: ignore[index, operator]
            for b, d in zip(buffers, draws, strict=True):
                b.update_priorities(d.indices, new, generations=d.generations)
        host, device = buffers
        assert torch.equal(host.priorities(), device.priorities())
        torch.testing.assert_close(host.tree.leaves, device.tree.leaves, rtol=5e-16, atol=0)
        torch.testing.assert_close(host.tree.total, device.tree.total, rtol=1e-14, atol=0)


priority = st.floats(0.0, 1e3) | st.floats(1e-9, 1e-3) | st.just(0.0)


@st.composite
def programs(draw: st.DrawFn) -> tuple[int, int, list[tuple[str, object]]]:
    capacity = draw(st.integers(1, 300))
    seed = draw(st.integers(0, 2**31))
    ops: list[tuple[str, object]] = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["extend", "step", "step", "norm"]))
        if kind == "extend":
            n = draw(st.integers(1, capacity))
            raw = draw(st.none() | st.lists(priority, min_size=n, max_size=n))
            ops.append(("extend", (n, raw)))
        elif kind == "norm":
            ops.append(("norm", draw(st.sampled_from(["max", "batch", "mean"]))))
        else:
            batch = draw(st.integers(1, 200))
            ops.append(("step", (batch, draw(st.lists(priority, max_size=batch)))))
    return capacity, seed, ops


@pytest.mark.property
@settings(max_examples=60, deadline=None)
@given(program=programs())
def test_numpy_and_torch_paths_agree_on_random_priorities(
    program: tuple[int, int, list[tuple[str, object]]],
) -> None:
    """The one implementation runs on numpy views on CPU and on tensors elsewhere: both
    draw the same slots and compute the same weights on random (not dyadic) priorities."""
    run_both(*program)


@pytest.mark.slow
def test_numpy_and_torch_paths_agree_below_the_top_row() -> None:
    """Capacities above the top row's width exercise the level updates and descents."""
    rng = np.random.default_rng(5)
    capacity = 3 * TOP_WIDTH + 11
    ops: list[tuple[str, object]] = [("extend", (capacity, list(rng.random(capacity) * 10)))]
    for batch in (1, 64, 256, 1024, 4096):
        ops.append(("step", (batch, list(rng.random(batch) ** 4))))
        ops.append(("extend", (batch, None)))
    run_both(capacity, 0, ops)

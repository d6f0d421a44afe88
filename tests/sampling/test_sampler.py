"""PrioritySampler alone, and the numpy (CPU) and torch (device) code paths against each other."""

from __future__ import annotations

import io
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ssdkd.sampling import PriorityBuffer, PrioritySampler, _levels
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


def test_rebuilds_keep_slots_never_given_a_priority_massless() -> None:
    """Regression: rebuilding the leaves (an ``alpha`` change, a state reload) gave a slot
    below ``size`` that never received a priority the leaf ``(0 + ε)^α`` (1 at α = 0), so
    it was drawn and its 0 dragged the live minimum of the ``"max"`` normalisation."""
    sampler = make(4, alpha=0.5)
    sampler.set(torch.tensor([2]), torch.tensor([3.0]))
    sampler.alpha = 0.0
    reloaded = make(4)
    reloaded.load_state_dict(sampler.state_dict())
    for s in (sampler, reloaded):
        assert s.tree.leaves.tolist() == [0.0, 0.0, 1.0, 0.0]
        assert s.tree.min.item() == 1.0
        assert set(s.sample(64).indices.tolist()) == {2}


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


def test_a_state_whose_generator_does_not_fit_is_refused_before_any_write() -> None:
    """Regression: the generator state's size was not checked, so loading a buffer state
    saved on another device type replaced the stored items and then failed in
    ``Generator.set_state``, leaving a half-loaded buffer."""
    buf = PriorityBuffer(4, generator=torch.Generator().manual_seed(0))
    buf.extend(x=torch.arange(2))
    state = buf.state_dict()
    other = PriorityBuffer(4, generator=torch.Generator().manual_seed(1))
    other.extend(x=torch.tensor([7, 8, 9]))
    state["generator_state"] = state["generator_state"][:-1]
    with pytest.raises(ValueError, match=r"generator_state'\]` of \d+ bytes .*, got \d+"):
        other.load_state_dict(state)
    assert other.data["x"].tolist() == [7, 8, 9]
    assert len(other) == 3


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


def run_both(
    capacity: int, seed: int, ops: list[tuple[str, object]], top_width: int = TOP_WIDTH
) -> None:
    """Apply the same calls to a host and a device-path buffer; compare after each.

    A small ``top_width`` puts tree levels below the top row at small capacities, so the
    level updates and the descents (guarded on torch, repaired on numpy) run.
    """
    kwargs: dict[str, object] = {"alpha": 0.6, "beta": 0.7, "weight_norm": "max"}
    with mock.patch.object(_levels, "TOP_WIDTH", top_width):
        buffers = [
            PriorityBuffer(
                capacity,
                generator=torch.Generator().manual_seed(seed),
                host=h,
                **kwargs,  # type: ignore[arg-type]
            )
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
def programs(draw: st.DrawFn) -> tuple[int, int, list[tuple[str, object]], int]:
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
    return capacity, seed, ops, draw(st.sampled_from([1, 4, 16, TOP_WIDTH]))


@pytest.mark.property
@settings(max_examples=60, deadline=None)
@given(program=programs())
def test_numpy_and_torch_paths_agree_on_random_priorities(
    program: tuple[int, int, list[tuple[str, object]], int],
) -> None:
    """The one implementation runs on numpy views on CPU and on tensors elsewhere: both
    draw the same slots and compute the same weights on random (not dyadic) priorities,
    with and without tree levels below the top row."""
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


# --------------------------------------------------------------------------------------
# the sampler alone against a plain float64 model


class SamplerMachine(RuleBasedStateMachine):
    """Model: a raw priority per slot (NaN = never set) and the live prefix ``size``."""

    @initialize(
        capacity=st.integers(1, 40),
        alpha=st.sampled_from([0.0, 0.6, 1.0]),
        beta=st.sampled_from([0.0, 0.4, 1.0]),
        weight_norm=st.sampled_from(["max", "batch", "mean"]),
        seed=st.integers(0, 2**31),
        host=st.booleans(),
        top_width=st.sampled_from([1, 4, TOP_WIDTH]),
    )
    def setup(
        self,
        capacity: int,
        alpha: float,
        beta: float,
        weight_norm: str,
        seed: int,
        host: bool,
        top_width: int,
    ) -> None:
        with mock.patch.object(_levels, "TOP_WIDTH", top_width):
            self.sampler = make(
                capacity, seed, alpha=alpha, beta=beta, weight_norm=weight_norm, host=host
            )
        self.capacity, self.alpha = capacity, alpha
        self.raw = np.full(capacity, np.nan)

    def size(self) -> int:
        live = np.flatnonzero(~np.isnan(self.raw))
        return int(live.max()) + 1 if live.size else 0

    def default(self) -> float:
        live = self.raw[~np.isnan(self.raw)]
        return float(live.max()) if live.size else 1.0

    @rule(data=st.data())
    def set_slots(self, data: st.DataObject) -> None:
        slots = data.draw(st.lists(st.integers(0, self.capacity - 1), min_size=1, unique=True))
        given = data.draw(st.none() | st.lists(priority, min_size=len(slots), max_size=len(slots)))
        if given is None:
            self.sampler.set(torch.tensor(slots))
            self.raw[slots] = self.default()
        else:
            self.sampler.set(torch.tensor(slots), torch.tensor(given, dtype=torch.float64))
            self.raw[slots] = given

    @precondition(lambda self: self.size() > 0)
    @rule(data=st.data())
    def update(self, data: st.DataObject) -> None:
        live = np.flatnonzero(~np.isnan(self.raw)).tolist()
        idx = data.draw(st.lists(st.sampled_from(live), min_size=1, max_size=10))
        values = data.draw(st.lists(priority, min_size=len(idx), max_size=len(idx)))
        valid = data.draw(st.lists(st.booleans(), min_size=len(idx), max_size=len(idx)))
        self.sampler.update(
            torch.tensor(idx), torch.tensor(values, dtype=torch.float64), torch.tensor(valid)
        )
        for i, v, ok in zip(idx, values, valid, strict=True):  # sequential: last valid wins
            if ok:
                self.raw[i] = v

    @precondition(lambda self: self.size() > 0)
    @rule(batch=st.integers(1, 48))
    def sample(self, batch: int) -> None:
        draw = self.sampler.sample(batch)
        idx = draw.indices.numpy()
        assert (np.diff(idx) >= 0).all()  # slot order
        assert not np.isnan(self.raw[idx]).any()  # only slots that were given a priority
        leaves = self.sampler.tree.leaves.numpy()
        np.testing.assert_allclose(draw.probabilities.numpy(), leaves[idx] / leaves.sum())
        assert np.isfinite(draw.weights.numpy()).all()
        assert (draw.weights.numpy() > 0).all()

    @rule(alpha=st.sampled_from([0.0, 0.3, 1.0]))
    def set_alpha(self, alpha: float) -> None:
        self.sampler.alpha = alpha
        self.alpha = alpha

    @invariant()
    def matches_model(self) -> None:
        size = self.size()
        assert self.sampler.size == size
        live = ~np.isnan(self.raw[:size])
        got = self.sampler.priorities().numpy()
        np.testing.assert_array_equal(got[live], self.raw[:size][live])
        leaves = self.sampler.tree.leaves.numpy()
        expected = np.where(live, (np.nan_to_num(self.raw[:size]) + 1e-6) ** self.alpha, 0.0)
        np.testing.assert_allclose(leaves[:size], expected, rtol=5e-16)
        assert (leaves[size:] == 0).all()
        assert self.sampler.max_priority().item() == self.default()


TestSamplerMachine = pytest.mark.property(SamplerMachine.TestCase)

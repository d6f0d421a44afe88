"""PriorityBuffer against a plain float64 numpy model, checking SAMPLING.md's invariants."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ssdkd.sampling import PriorityBuffer, priority_leaves

priority = st.one_of(
    st.just(0.0),
    st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.floats(min_value=1e-12, max_value=1e-3),
)
unit = st.sampled_from([0.0, 0.3, 0.6, 1.0]) | st.floats(0.0, 1.0)


class BufferMachine(RuleBasedStateMachine):
    """Model: raw priorities, generations and payload per slot, cursor and size."""

    @initialize(
        capacity=st.integers(1, 40),
        alpha=unit,
        beta=unit,
        eps=st.sampled_from([1e-6, 0.5]),
        weight_norm=st.sampled_from(["max", "batch", "mean"]),
        stratified=st.booleans(),
        seed=st.integers(0, 2**31),
    )
    def setup(
        self,
        capacity: int,
        alpha: float,
        beta: float,
        eps: float,
        weight_norm: str,
        stratified: bool,
        seed: int,
    ) -> None:
        self.buf = PriorityBuffer(
            capacity,
            alpha=alpha,
            beta=beta,
            eps=eps,
            weight_norm=weight_norm,
            stratified=stratified,
            generator=torch.Generator().manual_seed(seed),
        )
        self.capacity, self.alpha, self.eps = capacity, alpha, eps
        self.raw = np.zeros(capacity)
        self.gens = np.zeros(capacity, dtype=np.int64)
        self.payload = np.zeros(capacity, dtype=np.int64)
        self.size = self.cursor = self.counter = 0

    def live_raw(self) -> np.ndarray:
        return self.raw[: self.size]

    def default_priority(self) -> float:
        return float(self.live_raw().max()) if self.size else 1.0

    @rule(data=st.data())
    def extend(self, data: st.DataObject) -> None:
        n = data.draw(st.integers(1, self.capacity))
        given = data.draw(st.none() | st.lists(priority, min_size=n, max_size=n))
        values = np.arange(self.counter, self.counter + n)
        self.counter += n
        kwargs = {} if given is None else {"priorities": torch.tensor(given, dtype=torch.float64)}
        slots = self.buf.extend(x=torch.from_numpy(values), **kwargs)
        new = np.full(n, self.default_priority()) if given is None else np.array(given)
        expected = (self.cursor + np.arange(n)) % self.capacity
        assert slots.tolist() == expected.tolist()
        self.raw[expected], self.payload[expected] = new, values
        self.gens[expected] += 1
        self.cursor = (self.cursor + n) % self.capacity
        self.size = min(self.capacity, self.size + n)

    @precondition(lambda self: self.size > 0)
    @rule(data=st.data())
    def replace(self, data: st.DataObject) -> None:
        slots = data.draw(st.lists(st.integers(0, self.size - 1), min_size=1, unique=True))
        given = data.draw(st.none() | st.lists(priority, min_size=len(slots), max_size=len(slots)))
        values = np.arange(self.counter, self.counter + len(slots))
        self.counter += len(slots)
        kwargs = {} if given is None else {"priorities": torch.tensor(given, dtype=torch.float64)}
        self.buf.replace(torch.tensor(slots), x=torch.from_numpy(values), **kwargs)
        new = np.full(len(slots), self.default_priority()) if given is None else np.array(given)
        self.raw[slots], self.payload[slots] = new, values
        self.gens[slots] += 1

    @precondition(lambda self: self.size > 0)
    @rule(data=st.data(), use_generations=st.booleans())
    def update_with_duplicates(self, data: st.DataObject, use_generations: bool) -> None:
        idx = data.draw(st.lists(st.integers(0, self.size - 1), min_size=1, max_size=12))
        values = data.draw(st.lists(priority, min_size=len(idx), max_size=len(idx)))
        stale = data.draw(st.lists(st.booleans(), min_size=len(idx), max_size=len(idx)))
        gens = self.gens[idx] - np.array(stale, dtype=np.int64)
        kwargs = {"generations": torch.from_numpy(gens)} if use_generations else {}
        self.buf.update_priorities(
            torch.tensor(idx), torch.tensor(values, dtype=torch.float64), **kwargs
        )
        for i, v, s in zip(idx, values, stale, strict=True):  # sequential: last valid wins
            if not (use_generations and s):
                self.raw[i] = v

    @precondition(lambda self: self.size > 0)
    @rule(position=st.integers(0, 11), bad=st.sampled_from([math.nan, math.inf, -math.inf, -1.0]))
    def rejected_update_changes_nothing(self, position: int, bad: float) -> None:
        values = torch.ones(12, dtype=torch.float64)
        values[position] = bad
        before = self.buf.state_dict()
        leaves = self.buf.tree.leaves.clone()
        with pytest.raises(ValueError, match=f"at position {position}"):
            self.buf.update_priorities(torch.zeros(12, dtype=torch.long), values)
        assert torch.equal(self.buf.priorities(), before["raw_priorities"][: self.size])
        assert torch.equal(self.buf.tree.leaves, leaves)

    @precondition(lambda self: self.size > 0)
    @rule(batch=st.integers(1, 64))
    def sample(self, batch: int) -> None:
        s = self.buf.sample(batch)
        idx = s.indices.numpy()
        assert ((idx >= 0) & (idx < self.size)).all()
        leaves = self.buf.tree.leaves[: self.size].numpy()
        assert (leaves[idx] > 0).all()
        np.testing.assert_allclose(s.probabilities.numpy(), leaves[idx] / leaves.sum(), rtol=1e-12)
        w = s.weights.numpy()
        assert np.isfinite(w).all()
        assert (w > 0).all()
        norm = leaves.min() if self.buf.weight_norm == "max" else leaves[idx].min()
        expected = (leaves[idx] / norm) ** -self.buf.beta
        if self.buf.weight_norm == "mean":
            expected = expected / expected.mean()
            np.testing.assert_allclose(w.mean(), 1.0, rtol=1e-6)
        else:
            assert (w <= 1).all()
            assert (w[leaves[idx] == norm] == 1).all()
        np.testing.assert_allclose(w, expected, rtol=1e-6)
        if self.alpha == 0:
            np.testing.assert_allclose(w, 1.0, rtol=1e-6)
        assert s.data["x"].tolist() == self.payload[idx].tolist()
        assert s.generations.tolist() == self.gens[idx].tolist()

    @rule(alpha=unit)
    def set_alpha(self, alpha: float) -> None:
        self.buf.alpha = alpha
        self.alpha = alpha

    @rule(beta=unit)
    def set_beta(self, beta: float) -> None:
        self.buf.beta = beta

    @rule()
    def save_and_load(self) -> None:
        stream = io.BytesIO()
        torch.save(self.buf.state_dict(), stream)
        stream.seek(0)
        clone = PriorityBuffer(self.capacity)
        clone.load_state_dict(torch.load(stream, weights_only=True))
        assert torch.equal(clone.tree.leaves, self.buf.tree.leaves)
        if self.size:
            a, b = self.buf.sample(16), clone.sample(16)
            assert torch.equal(a.indices, b.indices)
            assert torch.equal(a.weights, b.weights)
        self.buf = clone

    def leaves(self) -> np.ndarray:
        return priority_leaves(torch.from_numpy(self.live_raw()), self.alpha, self.eps).numpy()

    @invariant()
    def matches_model(self) -> None:
        buf = self.buf
        assert len(buf) == self.size
        np.testing.assert_array_equal(buf.priorities().numpy(), self.live_raw())
        # torch.pow may round differently by 1 ulp between its SIMD body and scalar tail,
        # so a leaf equals (raw + ε)^α to within pow's own accuracy.
        np.testing.assert_allclose(buf.tree.leaves[: self.size].numpy(), self.leaves(), rtol=5e-16)
        assert (buf.tree.leaves[self.size :] == 0).all()
        assert buf.state_dict()["generations"].tolist() == self.gens.tolist()
        if self.size:
            assert buf.data["x"].tolist() == self.payload[: self.size].tolist()

    @invariant()
    def tree_is_consistent(self) -> None:
        leaves = self.buf.tree.leaves.numpy()
        total = self.buf.tree.total.item()
        reference = math.fsum(leaves.tolist())
        assert abs(total - reference) <= 1e-12 * reference
        if self.size:
            assert self.buf.tree.min.item() == leaves[: self.size].min()
            assert self.buf.sampler.max_priority().item() == self.default_priority()
        else:
            assert self.buf.tree.min.item() == math.inf


TestBufferMachine = pytest.mark.property(BufferMachine.TestCase)

"""FieldStorage alone: ring writes, generations, replace, bad input, state; a state machine."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ssdkd.sampling import FieldStorage


def test_extend_fills_then_overwrites_the_oldest_and_counts_generations() -> None:
    store = FieldStorage(3)
    assert store.extend(x=torch.tensor([0, 1]), y=torch.zeros(2, 2)).tolist() == [0, 1]
    assert store.extend(x=torch.tensor([2, 3]), y=torch.ones(2, 2)).tolist() == [2, 0]
    assert len(store) == 3
    assert store.cursor == 1
    assert store.data["x"].tolist() == [3, 1, 2]
    assert store.generations.tolist() == [2, 1, 1]
    assert store.gather(torch.tensor([0, 2]))["y"].tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_replace_writes_chosen_live_slots_and_bumps_their_generation() -> None:
    store = FieldStorage(4)
    store.extend(x=torch.arange(3))
    assert store.replace(torch.tensor([2, 0]), x=torch.tensor([20, 10])).tolist() == [2, 0]
    assert store.data["x"].tolist() == [10, 1, 20]
    assert store.generations.tolist() == [2, 1, 2, 0]


def snapshot(store: FieldStorage) -> dict[str, object]:
    state = store.state_dict()
    return {
        "size": state["size"],
        "cursor": state["cursor"],
        "generations": state["generations"].clone(),
        "fields": {k: v.clone() for k, v in state["fields"].items()},
    }


def assert_same(a: dict[str, object], b: dict[str, object]) -> None:
    assert a["size"] == b["size"]
    assert a["cursor"] == b["cursor"]
    assert torch.equal(a["generations"], b["generations"])  # type: ignore[arg-type]
    fields_a, fields_b = a["fields"], b["fields"]
    assert isinstance(fields_a, dict)
    assert isinstance(fields_b, dict)
    assert fields_a.keys() == fields_b.keys()
    assert all(torch.equal(fields_a[k], fields_b[k]) for k in fields_a)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda s: s.extend(), ValueError, "at least one named tensor field"),
        (lambda s: s.extend(x=torch.arange(2)), ValueError, r"missing \['y'\]"),
        (lambda s: s.extend(x=torch.arange(2), y=torch.zeros(3, 2)), ValueError, "same leading"),
        (lambda s: s.extend(x=torch.arange(5), y=torch.zeros(5, 2)), ValueError, "capacity=4"),
        (lambda s: s.extend(x=torch.arange(1), y=torch.zeros(1, 3)), ValueError, r"\(2,\)"),
        (lambda s: s.extend(x=torch.zeros(1), y=torch.zeros(1, 2)), TypeError, "torch.int64"),
        (lambda s: s.extend(x=[1], y=torch.zeros(1, 2)), TypeError, "torch.Tensor"),
        (
            lambda s: s.replace(torch.tensor([3]), x=torch.arange(1), y=torch.zeros(1, 2)),
            IndexError,
            r"`slots` in \[0, 3\), got 3",
        ),
        (
            lambda s: s.replace(torch.tensor([1, 1]), x=torch.arange(2), y=torch.zeros(2, 2)),
            ValueError,
            "distinct",
        ),
        (
            lambda s: s.replace(torch.tensor([1]), x=torch.arange(2), y=torch.zeros(2, 2)),
            ValueError,
            "1 rows",
        ),
        (lambda s: s.class_counts("y", 3), ValueError, "one integer per item"),
        (lambda s: s.class_counts("x", 2), ValueError, "got 2 at slot 2"),
        (lambda s: s.class_counts("z", 2), KeyError, "one of"),
        (lambda s: s.load_state_dict({"size": 9}), ValueError, "missing"),
    ],
)
def test_bad_input_raises_naming_it_and_changes_nothing(
    call: object, error: type[Exception], message: str
) -> None:
    store = FieldStorage(4)
    store.extend(x=torch.arange(3), y=torch.zeros(3, 2))
    before = snapshot(store)
    with pytest.raises(error, match=message):
        call(store)  # type: ignore[operator]
    assert_same(snapshot(store), before)


def test_class_counts_before_any_write_and_after() -> None:
    store = FieldStorage(5)
    assert store.class_counts("labels", 3).tolist() == [0, 0, 0]
    store.extend(labels=torch.tensor([2, 0, 2]))
    assert store.class_counts("labels", 3).tolist() == [1, 0, 2]


def test_state_round_trips_through_weights_only_load() -> None:
    store = FieldStorage(3)
    store.extend(x=torch.arange(2), y=torch.rand(2, 2))
    store.extend(x=torch.arange(2), y=torch.rand(2, 2))
    blob = io.BytesIO()
    torch.save(store.state_dict(), blob)
    blob.seek(0)
    other = FieldStorage(3)
    other.load_state_dict(torch.load(blob, weights_only=True))
    assert_same(snapshot(other), snapshot(store))
    with pytest.raises(ValueError, match=r"`state\['size'\]` in \[0, 2\], got 3"):
        FieldStorage(2).load_state_dict(store.state_dict())


class StorageMachine(RuleBasedStateMachine):
    """Model: one payload and one write counter per slot, with cursor and size."""

    @initialize(capacity=st.integers(1, 20))
    def setup(self, capacity: int) -> None:
        self.store = FieldStorage(capacity)
        self.capacity = capacity
        self.payload = np.zeros(capacity, dtype=np.int64)
        self.gens = np.zeros(capacity, dtype=np.int64)
        self.size = self.cursor = self.counter = 0

    @rule(data=st.data())
    def extend(self, data: st.DataObject) -> None:
        n = data.draw(st.integers(1, self.capacity))
        values = np.arange(self.counter, self.counter + n)
        self.counter += n
        slots = self.store.extend(x=torch.from_numpy(values))
        expected = (self.cursor + np.arange(n)) % self.capacity
        assert slots.tolist() == expected.tolist()
        self.payload[expected] = values
        self.gens[expected] += 1
        self.cursor = (self.cursor + n) % self.capacity
        self.size = min(self.capacity, self.size + n)

    @rule(data=st.data())
    def replace(self, data: st.DataObject) -> None:
        if self.size == 0:
            return
        slots = data.draw(st.lists(st.integers(0, self.size - 1), min_size=1, unique=True))
        values = np.arange(self.counter, self.counter + len(slots))
        self.counter += len(slots)
        self.store.replace(torch.tensor(slots), x=torch.from_numpy(values))
        self.payload[slots] = values
        self.gens[slots] += 1

    @invariant()
    def matches_model(self) -> None:
        assert len(self.store) == self.size
        assert self.store.cursor == self.cursor
        assert self.store.generations.tolist() == self.gens.tolist()
        if self.size:
            assert self.store.data["x"].tolist() == self.payload[: self.size].tolist()


TestStorageMachine = pytest.mark.property(StorageMachine.TestCase)

"""SumTree: layout, inverse-CDF search at adversarial masses, drift, validation."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from ssdkd.sampling import SumTree, _backend, _levels
from ssdkd.sampling._levels import TOP_WIDTH


def f64(values: object) -> torch.Tensor:
    return torch.as_tensor(values, dtype=torch.float64)


def filled(values: list[float] | np.ndarray, capacity: int | None = None) -> SumTree:
    values = np.asarray(values, dtype=np.float64)
    tree = SumTree(capacity or len(values))
    tree.update(torch.arange(len(values)), torch.from_numpy(values))
    return tree


def check_structure(tree: SumTree) -> None:
    """Every stored parent equals the reduction of its two children; padding is inert."""
    levels = tree._levels
    reductions = {"sum": np.add, "min": np.minimum, "max": np.maximum}
    for heap, kind in zip(levels.arrays, levels.kinds, strict=True):
        op = reductions[kind]
        width = levels.width
        while width > levels.top:
            width >>= 1
            parents = heap[width : 2 * width]
            children = heap[2 * width : 4 * width]
            np.testing.assert_array_equal(parents, op(children[0::2], children[1::2]))
    assert levels.arrays[0][levels.width + tree.capacity :].sum() == 0


def test_capacity_must_be_positive_int() -> None:
    with pytest.raises(ValueError, match="`capacity` to be an int >= 1, got 0"):
        SumTree(0)
    with pytest.raises(ValueError, match="capacity"):
        SumTree(2.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("capacity", [1, 2, 3, 5, 1000, 3 * TOP_WIDTH + 1])
def test_any_capacity_keeps_leaf_order_and_finds_every_leaf(capacity: int) -> None:
    """Leaves padded to a power of two keep their order, including the last one."""
    tree = filled(np.ones(capacity))
    assert tree.total.item() == capacity
    masses = f64(np.arange(capacity) + 0.5)
    assert torch.equal(tree.find(masses), torch.arange(capacity))
    check_structure(tree)


def test_last_write_wins_for_duplicate_indices() -> None:
    tree = SumTree(4)
    tree.update(torch.tensor([1, 2, 1, 1]), f64([5.0, 2.0, 7.0, 3.0]))
    assert tree.leaves.tolist() == [0.0, 3.0, 2.0, 0.0]
    assert tree.total.item() == 5.0


def test_min_is_taken_over_written_leaves_only() -> None:
    """Regression: the minimum was taken over empty slots (0) and weights became infinite."""
    tree = SumTree(10)
    assert tree.min.item() == math.inf
    tree.update(torch.tensor([3, 4]), f64([2.0, 0.5]))
    assert tree.min.item() == 0.5


def adversarial_masses(values: np.ndarray) -> np.ndarray:
    """0, every exact prefix sum ± 1 ulp, the total and the total minus one ulp."""
    prefix = np.cumsum(values)
    total = prefix[-1]
    return np.concatenate(
        [
            [0.0, total, np.nextafter(total, 0.0)],
            prefix,
            np.nextafter(prefix, np.inf),
            np.nextafter(prefix, -np.inf).clip(0.0),
        ]
    )


@pytest.mark.parametrize("seed", range(5))
def test_zero_mass_leaf_is_never_returned_at_rounding_boundaries(seed: int) -> None:
    """Regression: a draw at a rounding boundary returned a zero-priority leaf or one past
    the end (the float32 trees of several libraries)."""
    rng = np.random.default_rng(seed)
    capacity = int(rng.integers(1, 3 * TOP_WIDTH))
    values = rng.random(capacity) ** 8 * 10.0 ** rng.integers(-30, 30, capacity)
    values[rng.random(capacity) < 0.4] = 0.0
    values[rng.integers(capacity)] = 1.0
    tree = filled(values)
    for masses in (adversarial_masses(values), rng.random(5000) * tree.total.item()):
        found = tree.find(f64(masses)).numpy()
        assert ((found >= 0) & (found < capacity)).all()
        assert (values[found] > 0).all()


def test_inverse_cdf_bracket_is_exact_when_sums_are_exact() -> None:
    """prefix(i) ≤ u < prefix(i + 1) at every adversarial mass (integer leaves: exact sums)."""
    rng = np.random.default_rng(0)
    values = rng.integers(0, 4, 2 * TOP_WIDTH + 37).astype(np.float64)
    values[-1] = 1.0  # the last slot must be reachable
    tree = filled(values)
    exact = np.concatenate([[0.0], np.cumsum(values)])
    masses = adversarial_masses(values)
    found = tree.find(f64(masses)).numpy()
    total = exact[-1]
    for u, i in zip(masses, found, strict=True):
        clamped = min(u, np.nextafter(total, 0.0))
        assert exact[i] <= clamped < exact[i + 1]


def test_bracket_holds_within_rounding_for_random_floats() -> None:
    rng = np.random.default_rng(1)
    values = rng.random(5000) * 10.0 ** rng.integers(-5, 5, 5000)
    tree = filled(values)
    exact = [Fraction(0)]
    for v in values:
        exact.append(exact[-1] + Fraction(float(v)))
    total = float(exact[-1])
    masses = rng.random(2000) * total
    found = tree.find(f64(masses)).numpy()
    slack = Fraction(total) * Fraction(1, 2**40)
    for u, i in zip(masses, found, strict=True):
        assert exact[i] - slack <= Fraction(float(u)) < exact[i + 1] + slack


@pytest.mark.parametrize("seed", range(4))
def test_host_prefix_sums_are_a_sequential_float64_scan(seed: int) -> None:
    """Regression guard for the host backend's prefix sums (a torch cumsum on numpy
    memory): they must equal a left-to-right float64 scan bit for bit, so that a zero-mass
    node repeats its predecessor's prefix exactly and the CPU paths stay reproducible; a
    parallel or reordered scan fails this."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, TOP_WIDTH + 1))
    values = rng.random(n) ** 4 * 10.0 ** rng.integers(-12, 12, n)
    values[rng.random(n) < 0.3] = 0.0
    out = np.full(n + 1, np.nan)
    out[0] = 0.0
    _backend.NUMPY.prefix_sums_(values, out)
    expected = [0.0, *itertools.accumulate(values.tolist())]
    assert out.tolist() == expected


def test_numpy_descent_matches_guarded_torch_descent() -> None:
    """The CPU fast path (numpy, unguarded descent + repair of zero-leaf rows) and the
    device path (torch, always guarded; run here on CPU) return identical leaves."""
    rng = np.random.default_rng(2)
    values = rng.random(3 * TOP_WIDTH + 5)
    values[rng.random(values.size) < 0.5] = 0.0
    trees = [SumTree(values.size, host=host) for host in (True, False)]
    for tree in trees:
        tree.update(torch.arange(values.size), torch.from_numpy(values))
    masses = f64(np.concatenate([adversarial_masses(values), rng.random(3000) * values.sum()]))
    assert torch.equal(trees[0].find(masses), trees[1].find(masses))


@pytest.mark.slow
def test_root_does_not_drift_over_1e5_batch_updates() -> None:
    rng = np.random.default_rng(3)
    capacity = 4 * TOP_WIDTH + 3
    tree = SumTree(capacity)
    model = np.zeros(capacity)
    for _ in range(100_000):
        idx = rng.integers(0, capacity, 8)
        vals = rng.random(8) * 10.0 ** rng.integers(-3, 4)
        tree.write(torch.from_numpy(idx), torch.from_numpy(vals))
        model[idx] = vals
    reference = math.fsum(model.tolist())
    assert abs(tree.total.item() - reference) <= 1e-12 * reference
    check_structure(tree)
    np.testing.assert_array_equal(tree.leaves.numpy(), model)


def test_bad_values_raise_naming_position_and_leave_tree_unchanged() -> None:
    tree = filled([1.0, 2.0, 3.0])
    before = [h.clone() for h in tree._levels.heaps]
    for bad, name in ((float("nan"), "nan"), (float("inf"), "inf"), (-1.0, "-1.0")):
        with pytest.raises(
            ValueError, match=f"`values` to be finite and >= 0, got {name} at position 1"
        ):
            tree.update(torch.tensor([0, 1]), f64([1.0, bad]))
    with pytest.raises(IndexError, match=r"`indices` in \[0, 3\), got 3 at position 0"):
        tree.update(torch.tensor([3]), f64([1.0]))
    with pytest.raises(TypeError, match="integer tensor"):
        tree.update(torch.tensor([0.0]), f64([1.0]))
    with pytest.raises(ValueError, match=r"shape \(1,\), got \(2,\)"):
        tree.update(torch.tensor([0]), f64([1.0, 2.0]))
    for heap, old in zip(tree._levels.heaps, before, strict=True):
        assert torch.equal(heap, old)


def test_find_validates_masses_and_empty_tree() -> None:
    with pytest.raises(ValueError, match="total to be > 0"):
        SumTree(3).find(f64([0.0]))
    with pytest.raises(
        ValueError, match=r"`masses` to be finite and >= 0, got -1\.0 at position 0"
    ):
        filled([1.0]).find(f64([-1.0]))


def test_unguarded_descent_into_padding_is_repaired_not_an_index_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: the CPU descent runs unguarded and redoes the rows that end on a zero
    leaf; rounding can also end it on a *padding* leaf past the capacity, and the check
    read that leaf out of bounds (an IndexError inside ``sample``)."""
    monkeypatch.setattr(_levels, "TOP_WIDTH", 1)  # levels from the root down
    values = [
        9.256207979506186e-17,
        0.09754013534449568,
        4.032582920718606e-14,
        6.116828305049122,
        2.503463653052478e-10,
        2.0033730871402834e-09,
        4.190220861533129e-13,
        7.142746002040548e-08,
        9.207825473170747,
    ]
    masses = f64([15.422193987246002])
    found = []
    for host in (True, False):
        tree = SumTree(9, host=host)
        tree.update(torch.arange(9), f64(values))
        found.append(tree.find(masses))
    assert found[0].tolist() == found[1].tolist() == [8]

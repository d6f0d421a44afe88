"""PriorityBuffer: semantics, regressions, bad input, state, goodness of fit, CUDA."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from ssdkd.sampling import PriorityBuffer, priority_leaves


def make(capacity: int = 8, seed: int = 0, **kwargs: object) -> PriorityBuffer:
    return PriorityBuffer(capacity, generator=torch.Generator().manual_seed(seed), **kwargs)  # type: ignore[arg-type]


def snapshot(buf: PriorityBuffer) -> list[torch.Tensor]:
    """Every tensor of the buffer's state, trees included, plus its bookkeeping numbers."""
    state = buf.state_dict()
    tensors = [state["raw_priorities"], state["generations"], state["generator_state"]]
    tensors += [state["fields"][k] for k in sorted(state["fields"])]
    tensors += list(buf.tree._levels.heaps)
    numbers = [state[k] for k in ("size", "cursor", "alpha", "beta", "eps")]
    return [t.clone() for t in tensors] + [torch.tensor(numbers, dtype=torch.float64)]


def assert_unchanged(buf: PriorityBuffer, before: list[torch.Tensor]) -> None:
    after = snapshot(buf)
    assert len(after) == len(before)
    for a, b in zip(after, before, strict=True):
        assert a.dtype == b.dtype
        assert torch.equal(a, b)


def chi_square_ok(counts: np.ndarray, probs: np.ndarray) -> bool:
    """Pearson χ² against ``probs`` below a z = 5 Wilson–Hilferty critical value.

    Bins with expected count < 5 are pooled so the χ² approximation holds.
    """
    expected = probs * counts.sum()
    small = expected < 5
    if small.any():
        expected = np.append(expected[~small], expected[small].sum())
        counts = np.append(counts[~small], counts[small].sum())
    stat = float(((counts - expected) ** 2 / expected).sum())
    df = len(expected) - 1
    if df == 0:
        return stat == 0.0
    crit = df * (1 - 2 / (9 * df) + 5 * math.sqrt(2 / (9 * df))) ** 3
    return stat < crit


def draw_counts(buf: PriorityBuffer, draws: int = 200_000) -> np.ndarray:
    counts = np.zeros(len(buf), dtype=np.int64)
    for _ in range(draws // 2000):
        counts += np.bincount(buf.sample(2000).indices.numpy(), minlength=len(buf))
    return counts


# ------------------------------------------------------------------ goodness of fit
@pytest.mark.parametrize(
    ("capacity", "raw"),
    [
        (7, np.arange(1.0, 8.0)),  # full, non-power-of-two, largest priority in the last slot
        (1000, np.random.default_rng(0).random(600) * 5),  # len < capacity
        (100, np.append(np.full(99, 1e-3), 1e3)),  # one huge among many tiny
        (1, np.array([0.0])),
    ],
)
@pytest.mark.parametrize("alpha", [1.0, 0.6, 0.0])
def test_sampled_frequencies_match_probabilities(
    capacity: int, raw: np.ndarray, alpha: float
) -> None:
    buf = make(capacity, alpha=alpha, eps=1e-6)
    buf.extend(x=torch.arange(len(raw)), priorities=torch.from_numpy(raw))
    leaves = (raw + 1e-6) ** alpha
    assert chi_square_ok(draw_counts(buf), leaves / leaves.sum())


def test_stratified_sampling_matches_probabilities_and_covers_strata() -> None:
    raw = np.arange(1.0, 11.0)
    buf = make(10, alpha=1.0, stratified=True)
    buf.extend(x=torch.arange(10), priorities=torch.from_numpy(raw))
    assert chi_square_ok(draw_counts(buf), (raw + 1e-6) / (raw + 1e-6).sum())
    # With B equal to the number of equal-mass strata, each stratum gets one draw.
    assert buf.sample(55).indices.bincount(minlength=10).tolist() == list(range(1, 11))


def test_chi_square_check_rejects_wrong_distribution() -> None:
    counts = np.array([50_000, 50_000, 100_000])
    assert not chi_square_ok(counts, np.array([1 / 3, 1 / 3, 1 / 3]))


# ------------------------------------------------------------------ semantics
def test_the_default_weights_survive_one_near_zero_priority() -> None:
    """Prevents the default teaching the pitfall: with buffer-wide ("max") normalisation,
    the former default, one priority near 0 anywhere in the buffer scaled every drawn
    weight (and the weighted loss) towards 0."""
    buf = make(64, alpha=0.6, beta=1.0)
    assert buf.weight_norm == "mean"
    buf.extend(x=torch.arange(64), priorities=torch.cat([torch.ones(63), torch.zeros(1)]))
    weights = buf.sample(32).weights
    assert float(weights.mean()) == pytest.approx(1.0, rel=1e-5)
    assert float(weights.min()) > 0.5
    max_norm = make(64, alpha=0.6, beta=1.0, weight_norm="max")
    max_norm.extend(x=torch.arange(64), priorities=torch.cat([torch.ones(63), torch.zeros(1)]))
    assert float(max_norm.sample(32).weights.max()) < 1e-3  # what the old default did


def test_sample_fields_weights_probabilities_generations() -> None:
    buf = make(4, alpha=1.0, beta=1.0, eps=1e-6, weight_norm="max")
    buf.extend(
        x=torch.tensor([10, 11, 12]), y=torch.ones(3, 2), priorities=torch.tensor([1.0, 2.0, 4.0])
    )
    s = buf.sample(64)
    assert s.data["x"].tolist() == (s.indices + 10).tolist()
    assert s.data["y"].shape == (64, 2)
    leaves = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64) + 1e-6
    torch.testing.assert_close(
        s.probabilities, leaves[s.indices] / leaves.sum(), rtol=1e-15, atol=0
    )
    torch.testing.assert_close(s.weights, (leaves[s.indices] / leaves[0]).pow(-1.0).float())
    assert s.weights.dtype == torch.get_default_dtype()
    assert s.generations.tolist() == [1] * 64


def test_minimum_priority_item_has_weight_one_and_beta_zero_gives_ones() -> None:
    buf = make(16, alpha=0.7, beta=0.5, weight_norm="max")
    buf.extend(x=torch.arange(3), priorities=torch.tensor([3.0, 0.5, 2.0]))
    s = buf.sample(200)
    assert (s.weights[s.indices == 1] == 1).all()
    assert (s.weights[s.indices != 1] < 1).all()
    buf.beta = 0.0
    assert (buf.sample(50).weights == 1).all()


def test_batch_weight_norm_uses_batch_minimum() -> None:
    buf = make(8, alpha=1.0, beta=1.0, weight_norm="batch")
    buf.extend(x=torch.arange(2), priorities=torch.tensor([1.0, 3.0]))
    for _ in range(20):
        s = buf.sample(3)
        assert s.weights.max().item() == 1.0


@pytest.mark.parametrize("device_path", ["host", "torch"])
def test_one_zero_priority_does_not_switch_off_mean_or_batch_normalised_weights(
    device_path: str,
) -> None:
    """Regression: buffer-wide ("max") normalisation divides by the weight of the smallest
    priority, so one item the student already fits (KL ≈ 0) scaled every importance weight,
    and with it SSD-KD's KD gradient, down to ~5e-4 at β = 1. "mean" and "batch" do not."""
    n = 6000
    raw = torch.linspace(0.05, 0.55, n, dtype=torch.float64)
    means = {}
    for norm in ("max", "batch", "mean"):
        # host=False: the device code path, run on CPU tensors.
        buf = make(n, alpha=0.6, beta=1.0, weight_norm=norm, host=device_path == "host")
        buf.extend(x=torch.arange(n), priorities=raw.clone())
        buf.update_priorities(torch.tensor([0]), torch.zeros(1))
        means[norm] = float(torch.stack([buf.sample(256).weights for _ in range(20)]).mean())
    assert means["max"] < 1e-3  # the failure, still available on request
    assert means["batch"] > 0.2
    assert means["mean"] == pytest.approx(1.0, rel=1e-5)


def test_mean_weight_norm_gives_mean_one_and_keeps_the_ratios() -> None:
    buf = make(8, alpha=1.0, beta=1.0, weight_norm="mean")
    buf.extend(x=torch.arange(2), priorities=torch.tensor([1.0, 3.0]))
    for _ in range(20):
        s = buf.sample(4)
        assert float(s.weights.mean()) == pytest.approx(1.0, rel=1e-6)
        ratio = s.weights[s.data["x"] == 1] / s.weights.max()
        if 0 < ratio.numel() < 4:
            # (l_1 / l_0)^-1 = (3 + ε) / (1 + ε) inverted: the draw of item 1 weighs 1/3.
            assert torch.allclose(ratio, torch.tensor(1 / 3), rtol=1e-5)


def test_alpha_zero_is_uniform_with_unit_weights() -> None:
    buf = make(8, alpha=0.0, beta=1.0)
    buf.extend(x=torch.arange(5), priorities=torch.tensor([0.0, 1.0, 10.0, 100.0, 1e6]))
    s = buf.sample(100)
    assert (s.weights == 1).all()
    assert (s.probabilities == 0.2).all()


def test_new_items_get_current_maximum_raw_priority() -> None:
    buf = make(8, alpha=0.5, eps=1e-6)
    buf.extend(x=torch.arange(2))
    assert buf.priorities().tolist() == [1.0, 1.0]
    buf.update_priorities(torch.tensor([0, 1]), torch.tensor([7.0, 3.0]))
    buf.update_priorities(torch.tensor([0]), torch.tensor([2.0]))  # the maximum drops to 3
    buf.extend(x=torch.tensor([5]))
    assert buf.priorities().tolist() == [2.0, 3.0, 3.0]


def test_alpha_is_applied_once_to_new_items() -> None:
    """Regression: new items received ((p + ε)^α + ε)^α, the transform applied twice."""
    buf = make(4, alpha=0.5, eps=0.25)
    buf.extend(x=torch.tensor([0]), priorities=torch.tensor([4.0]))
    buf.extend(x=torch.tensor([1]))
    assert buf.tree.leaves[1].item() == (4.0 + 0.25) ** 0.5


def test_alpha_setter_rebuilds_leaves_from_raw() -> None:
    buf = make(4, alpha=0.5)
    buf.extend(x=torch.arange(3), priorities=torch.tensor([1.0, 4.0, 9.0]))
    buf.alpha = 1.0
    raw = buf.priorities()
    assert torch.equal(buf.tree.leaves[:3], priority_leaves(raw, 1.0, buf.eps))
    with pytest.raises(ValueError, match=r"`alpha` to be a float in \[0, 1\], got 1.5"):
        buf.alpha = 1.5
    with pytest.raises(ValueError, match="`beta`"):
        buf.beta = -0.1
    assert buf.alpha == 1.0


def test_extend_wraps_around_fifo_and_returns_slots() -> None:
    buf = make(5)
    assert buf.extend(x=torch.arange(4)).tolist() == [0, 1, 2, 3]
    assert buf.extend(x=torch.tensor([4, 5, 6])).tolist() == [4, 0, 1]
    assert len(buf) == 5
    assert buf.data["x"].tolist() == [5, 6, 2, 3, 4]
    assert buf.state_dict()["generations"].tolist() == [2, 2, 1, 1, 1]


def test_stale_slot_is_not_updated() -> None:
    """Regression: a slot overwritten between sample and update received the old item's
    priority."""
    buf = make(2, alpha=1.0)
    buf.extend(x=torch.arange(2), priorities=torch.tensor([1.0, 1.0]))
    s = buf.sample(4)
    buf.extend(x=torch.tensor([9]), priorities=torch.tensor([5.0]))  # rewrites slot 0
    buf.update_priorities(s.indices, torch.full((4,), 0.25), generations=s.generations)
    expected = [5.0 if i == 0 else 0.25 if (s.indices == 1).any() else 1.0 for i in range(2)]
    assert buf.priorities().tolist() == expected


def test_duplicate_updates_last_write_wins_and_stale_duplicates_lose() -> None:
    buf = make(4)
    buf.extend(x=torch.arange(3), priorities=torch.ones(3))
    buf.update_priorities(torch.tensor([2, 0, 2, 2]), torch.tensor([5.0, 6.0, 7.0, 8.0]))
    assert buf.priorities().tolist() == [6.0, 1.0, 8.0]
    gens = torch.tensor([1, 1, 0])  # the last write for slot 0 is stale
    buf.update_priorities(torch.tensor([0, 1, 0]), torch.tensor([2.0, 3.0, 4.0]), generations=gens)
    assert buf.priorities().tolist() == [2.0, 3.0, 8.0]


def test_replace_overwrites_slots_with_max_priority_and_bumps_generation() -> None:
    buf = make(4, alpha=1.0)
    buf.extend(x=torch.arange(4), priorities=torch.tensor([1.0, 2.0, 3.0, 0.5]))
    assert buf.replace(torch.tensor([3, 0]), x=torch.tensor([30, 0])).tolist() == [3, 0]
    assert buf.data["x"].tolist() == [0, 1, 2, 30]
    assert buf.priorities().tolist() == [3.0, 2.0, 3.0, 3.0]
    assert buf.state_dict()["generations"].tolist() == [2, 1, 1, 2]
    buf.replace(torch.tensor([1]), priorities=torch.tensor([0.0]), x=torch.tensor([7]))
    assert buf.priorities().tolist() == [3.0, 0.0, 3.0, 3.0]


def test_class_counts_histogram_of_live_items() -> None:
    buf = make(6)
    assert buf.class_counts("labels", 3).tolist() == [0, 0, 0]  # before any item
    buf.extend(labels=torch.tensor([0, 2, 2, 1]))
    assert buf.class_counts("labels", 4).tolist() == [1, 1, 2, 0]
    with pytest.raises(ValueError, match=r"`labels` values in \[0, 2\), got 2 at slot 1"):
        buf.class_counts("labels", 2)
    with pytest.raises(KeyError, match="images"):
        buf.class_counts("images", 2)


# ------------------------------------------------------------------ bad input
def test_bad_input_raises_and_leaves_buffer_bit_identical() -> None:
    buf = make(4, alpha=0.6)
    buf.extend(x=torch.arange(3), y=torch.zeros(3, 2), priorities=torch.tensor([1.0, 2.0, 3.0]))
    before = snapshot(buf)
    cases = [
        (
            ValueError,
            "`priorities` to be finite and >= 0, got nan at position 1",
            lambda: buf.update_priorities(torch.tensor([0, 1]), torch.tensor([1.0, float("nan")])),
        ),
        (
            ValueError,
            "got inf at position 0",
            lambda: buf.update_priorities(torch.tensor([0]), torch.tensor([float("inf")])),
        ),
        (
            ValueError,
            "got -2.0 at position 2",
            lambda: buf.extend(
                x=torch.arange(3), y=torch.zeros(3, 2), priorities=torch.tensor([1.0, 1.0, -2.0])
            ),
        ),
        (
            IndexError,
            r"`indices` in \[0, 3\), got 3 at position 1",
            lambda: buf.update_priorities(torch.tensor([0, 3]), torch.ones(2)),
        ),
        (ValueError, "`batch_size` to be an int >= 1, got 0", lambda: buf.sample(0)),
        (ValueError, r"missing \['y'\]", lambda: buf.extend(x=torch.arange(2))),
        (
            ValueError,
            r"extra \['z'\]",
            lambda: buf.extend(x=torch.arange(2), y=torch.zeros(2, 2), z=torch.zeros(2)),
        ),
        (
            ValueError,
            r"items of shape \(2,\), got \(3,\)",
            lambda: buf.extend(x=torch.arange(2), y=torch.zeros(2, 3)),
        ),
        (
            TypeError,
            "of dtype torch.int64, got torch.float32",
            lambda: buf.extend(x=torch.zeros(2), y=torch.zeros(2, 2)),
        ),
        (
            ValueError,
            "same leading size",
            lambda: buf.extend(x=torch.arange(2), y=torch.zeros(3, 2)),
        ),
        (
            ValueError,
            "at most capacity=4 items, got 5",
            lambda: buf.extend(x=torch.arange(5), y=torch.zeros(5, 2)),
        ),
        (
            ValueError,
            "`slots` to be distinct",
            lambda: buf.replace(torch.tensor([1, 1]), x=torch.arange(2), y=torch.zeros(2, 2)),
        ),
        (
            IndexError,
            r"`slots` in \[0, 3\)",
            lambda: buf.replace(torch.tensor([3]), x=torch.arange(1), y=torch.zeros(1, 2)),
        ),
        (
            ValueError,
            r"`generations` to have shape \(2,\)",
            lambda: buf.update_priorities(
                torch.tensor([0, 1]), torch.ones(2), generations=torch.ones(3, dtype=torch.long)
            ),
        ),
        (
            ValueError,
            r"`alpha` to be a float in \[0, 1\], got nan",
            lambda: setattr(buf, "alpha", float("nan")),
        ),
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=message):
            call()
        assert_unchanged(buf, before)


def test_sampling_an_empty_buffer_raises() -> None:
    with pytest.raises(ValueError, match="non-empty buffer to sample from, got len 0"):
        make().sample(1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": -0.1}, "`alpha`"),
        ({"beta": 2.0}, "`beta`"),
        ({"eps": 0.0}, "`eps` to be a finite float > 0, got 0.0"),
        ({"weight_norm": "sum"}, "`weight_norm` in"),
    ],
)
def test_constructor_validates_hyperparameters(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PriorityBuffer(4, **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------ state
def round_trip(state: dict[str, object]) -> dict[str, object]:
    stream = io.BytesIO()
    torch.save(state, stream)
    stream.seek(0)
    return torch.load(stream, weights_only=True)


def test_priorities_survive_reload_and_sampling_continues_identically() -> None:
    """Regression: checkpoints lost the priorities (or needed unsafe unpickling)."""
    buf = make(6, alpha=0.7, beta=0.3)
    buf.extend(x=torch.arange(5), priorities=torch.tensor([0.1, 5.0, 2.0, 0.0, 3.0]))
    buf.update_priorities(torch.tensor([1]), torch.tensor([0.5]))
    clone = make(6, seed=123)
    clone.load_state_dict(round_trip(buf.state_dict()))
    assert_unchanged(clone, snapshot(buf))
    a, b = buf.sample(32), clone.sample(32)
    assert torch.equal(a.indices, b.indices)
    assert torch.equal(a.weights, b.weights)


def test_loading_a_different_capacity_or_schema_raises_and_changes_nothing() -> None:
    buf = make(6)
    buf.extend(x=torch.arange(2))
    other = make(5)
    other.extend(x=torch.arange(3))
    before = snapshot(other)
    with pytest.raises(ValueError, match=r"`state\['capacity'\]` == 5 .* got 6"):
        other.load_state_dict(buf.state_dict())
    state = make(5).state_dict()
    state["schema_version"] = 99
    with pytest.raises(ValueError, match=r"`state\['schema_version'\]` == 1, got 99"):
        other.load_state_dict(state)
    state = make(5).state_dict()
    del state["raw_priorities"]
    with pytest.raises(ValueError, match="missing"):
        other.load_state_dict(state)
    assert_unchanged(other, before)


# ------------------------------------------------------------------ CUDA
@pytest.mark.cuda
def test_cuda_matches_cpu_and_never_syncs() -> None:
    # Dyadic priorities make every partial sum exact, so CPU (sequential scan) and CUDA
    # (parallel scan) must agree bit for bit.
    raw = torch.randint(0, 64, (3000,), generator=torch.Generator().manual_seed(0)).double()
    bufs = []
    for device in ("cpu", "cuda"):
        buf = PriorityBuffer(
            4096,
            alpha=1.0,
            eps=2.0**-4,
            device=device,
            validate=False,
            generator=torch.Generator(device=device).manual_seed(0),
        )
        buf.extend(x=torch.arange(3000, device=device), priorities=raw.to(device))
        bufs.append(buf)
    cpu, cuda = bufs
    masses = torch.rand(5000, dtype=torch.float64) * cpu.tree.total.item()
    assert torch.equal(cpu.tree.find(masses), cuda.tree.find(masses.cuda()).cpu())
    new = torch.randint(0, 64, (256,), device="cuda").double()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            s = cuda.sample(256)
            cuda.update_priorities(s.indices, new, generations=s.generations)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_priorities_of_chosen_slots_are_gathered() -> None:
    buf = make(8, alpha=1.0)
    buf.extend(x=torch.arange(4), priorities=torch.tensor([1.0, 2.0, 3.0, 4.0]))
    picked = buf.priorities(torch.tensor([3, 0, 3]))
    assert picked.dtype == torch.float64
    assert picked.tolist() == [4.0, 1.0, 4.0]
    assert buf.priorities().tolist() == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(TypeError, match="integer tensor"):
        buf.priorities(torch.tensor([0.5]))

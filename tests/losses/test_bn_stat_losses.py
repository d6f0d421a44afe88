"""bn_stat_loss, BNStatLoss and BNStatMomentum."""

from __future__ import annotations

import io
import math

import pytest
import torch

from ssdkd.hooks import BNLayerStats
from ssdkd.losses import BNStatLoss, BNStatMomentum, bn_stat_loss


def _layer(name: str, mean: list[float], var: list[float], rm: list[float], rv: list[float]):
    t = torch.tensor
    return BNLayerStats(name, t(mean), t(var), t(rm), t(rv))


def _random_stats(seed: int, dtype: torch.dtype = torch.float64) -> list[BNLayerStats]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i, channels in enumerate((3, 5)):

        def rand(scale: float = 1.0, c: int = channels) -> torch.Tensor:
            return torch.randn(c, generator=gen, dtype=dtype) * scale

        out.append(BNLayerStats(f"l{i}", rand(), rand().abs(), rand(), rand().abs() + 0.1))
    return out


def test_known_value_by_hand() -> None:
    a = _layer("a", [3.0, 4.0], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0])  # 5 + 0
    b = _layer("b", [1.0], [3.0], [1.0], [1.0])  # 0 + 2
    assert bn_stat_loss([a, b]).item() == pytest.approx(7.0)
    assert bn_stat_loss([a, b], layer_weights=[10.0, 0.5]).item() == pytest.approx(51.0)


def test_matches_a_loop_of_plain_norms() -> None:
    stats = _random_stats(0)
    expected = 0.0
    for w, s in zip((2.0, 0.25), stats, strict=True):
        dm = math.sqrt(
            sum(
                (m - r) ** 2 for m, r in zip(s.mean.tolist(), s.running_mean.tolist(), strict=False)
            )
        )
        dv = math.sqrt(
            sum((v - r) ** 2 for v, r in zip(s.var.tolist(), s.running_var.tolist(), strict=False))
        )
        expected += w * (dm + dv)
    got = bn_stat_loss(stats, layer_weights=[2.0, 0.25])
    assert got.shape == ()
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_function_equals_module() -> None:
    stats = _random_stats(1)
    torch.testing.assert_close(BNStatLoss()(stats), bn_stat_loss(stats))
    torch.testing.assert_close(
        BNStatLoss([1.0, 3.0])(stats), bn_stat_loss(stats, layer_weights=[1.0, 3.0])
    )


def test_gradcheck_float64() -> None:
    base = _random_stats(2)
    leaves = [t.clone().requires_grad_() for s in base for t in (s.mean, s.var)]

    def loss(*xs: torch.Tensor) -> torch.Tensor:
        stats = [
            BNLayerStats(s.name, xs[2 * i], xs[2 * i + 1], s.running_mean, s.running_var)
            for i, s in enumerate(base)
        ]
        return bn_stat_loss(stats, layer_weights=[1.0, 2.0])

    assert torch.autograd.gradcheck(loss, tuple(leaves))


def test_zero_gradient_at_a_perfect_match() -> None:
    mean = torch.zeros(2, requires_grad=True)
    var = torch.ones(2, requires_grad=True)
    bn_stat_loss([BNLayerStats("a", mean, var, torch.zeros(2), torch.ones(2))]).backward()
    assert mean.grad is not None
    assert var.grad is not None
    assert torch.isfinite(mean.grad).all()
    assert torch.isfinite(var.grad).all()


@pytest.mark.parametrize(
    ("stats", "weights", "error", "match"),
    [
        ([], None, ValueError, "`stats` to hold at least one layer"),
        ("x", None, TypeError, "`stats` to be a sequence of BNLayerStats, got str"),
        ([(1, 2)], None, TypeError, r"`stats\[0\]` to be a BNLayerStats, got tuple"),
        (
            [_layer("a", [0.0, 0.0], [1.0], [0.0, 0.0], [1.0, 1.0])],
            None,
            ValueError,
            r"`stats\[0\].var` to have shape \(C,\) = \(2,\) .* got \(1,\)",
        ),
        (None, [1.0], ValueError, r"one weight per layer \(2\), got 1"),
        (None, [1.0, -1.0], ValueError, r"`layer_weights\[1\]` to be finite, >= 0.0, got -1.0"),
        (None, torch.ones(2), TypeError, "`layer_weights` to be a sequence of numbers"),
    ],
)
def test_invalid_input_raises(stats: object, weights: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        bn_stat_loss(_random_stats(0) if stats is None else stats, layer_weights=weights)  # type: ignore[arg-type]


def test_integer_stats_raise() -> None:
    bad = BNLayerStats(
        "a", torch.zeros(2, dtype=torch.long), torch.ones(2), torch.zeros(2), torch.ones(2)
    )
    with pytest.raises(TypeError, match=r"`stats\[0\].mean` to be a floating-point tensor"):
        bn_stat_loss([bad])


# --- momentum form -----------------------------------------------------------------


def test_momentum_first_call_is_the_plain_loss() -> None:
    stats = _random_stats(3)
    mmt = BNStatMomentum(0.9, layer_weights=[1.0, 2.0])
    assert not mmt.initialized
    torch.testing.assert_close(mmt(stats), bn_stat_loss(stats, layer_weights=[1.0, 2.0]))


def test_momentum_mix_and_ema_by_hand() -> None:
    m = 0.9
    first, second, third = _random_stats(4), _random_stats(5), _random_stats(6)
    mmt = BNStatMomentum(m)
    mmt.update(first)
    for got, s in zip(mmt.ema_mean, first, strict=True):
        torch.testing.assert_close(got, s.mean)  # the first update copies
    mixed = [
        BNLayerStats(
            s.name,
            (1 - m) * s.mean + m * e.mean,
            (1 - m) * s.var + m * e.var,
            s.running_mean,
            s.running_var,
        )
        for s, e in zip(second, first, strict=True)
    ]
    torch.testing.assert_close(mmt.forward(second), bn_stat_loss(mixed))
    mmt.update(second)
    for got_m, got_v, a, b in zip(mmt.ema_mean, mmt.ema_var, first, second, strict=True):
        torch.testing.assert_close(got_m, m * a.mean + (1 - m) * b.mean)
        torch.testing.assert_close(got_v, m * a.var + (1 - m) * b.var)
    assert torch.isfinite(mmt(third))


def test_momentum_update_is_detached_and_loss_keeps_the_graph() -> None:
    stats = _random_stats(7)
    leaf = stats[0].mean.clone().requires_grad_()
    live = [BNLayerStats("l0", leaf, *_fields(stats[0])), stats[1]]
    mmt = BNStatMomentum()
    mmt.update(live)
    assert not any(t.requires_grad for t in mmt.ema_mean)
    mmt(live).backward()
    assert leaf.grad is not None
    assert leaf.grad.abs().sum() > 0


def _fields(s: BNLayerStats) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return s.var, s.running_mean, s.running_var


def test_momentum_zero_is_the_plain_loss() -> None:
    mmt = BNStatMomentum(0.0)
    mmt.update(_random_stats(8))
    stats = _random_stats(9)
    torch.testing.assert_close(mmt(stats), bn_stat_loss(stats))


def test_momentum_reset() -> None:
    mmt = BNStatMomentum()
    mmt.update(_random_stats(8))
    mmt.reset()
    assert not mmt.initialized
    stats = _random_stats(9)
    torch.testing.assert_close(mmt(stats), bn_stat_loss(stats))


def test_momentum_state_dict_round_trips_with_weights_only() -> None:
    mmt = BNStatMomentum(0.8)
    mmt.update(_random_stats(10))
    mmt.update(_random_stats(11))
    buffer = io.BytesIO()
    torch.save(mmt.state_dict(), buffer)
    buffer.seek(0)
    restored = BNStatMomentum(0.8)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    stats = _random_stats(12)
    torch.testing.assert_close(restored(stats), mmt(stats))
    for a, b in zip(restored.ema_var, mmt.ema_var, strict=True):
        torch.testing.assert_close(a, b)
    empty = BNStatMomentum()
    empty.load_state_dict(BNStatMomentum().state_dict())
    assert not empty.initialized


def test_momentum_rejects_other_layers_and_bad_states_unchanged() -> None:
    mmt = BNStatMomentum()
    stats = _random_stats(13)
    mmt.update(stats)
    renamed = [BNLayerStats("other", *_all(stats[0])), stats[1]]
    with pytest.raises(ValueError, match=r"layers the moving average tracks \['l0', 'l1'\]"):
        mmt(renamed)
    with pytest.raises(ValueError, match="layers the moving average tracks"):
        mmt.update(stats[:1])
    before = mmt.state_dict()
    bad_states = [
        ({"version": 2}, "version 1"),
        ({**before, "mean": before["mean"][:1]}, "equal length"),
        ({**before, "var": [torch.zeros(3), torch.zeros(4)]}, "same shape"),
        ({**before, "mean": [torch.zeros(3, dtype=torch.long), torch.zeros(5)]}, "floating"),
        ({**before, "names": [1, "l1"]}, "to be a str"),
    ]
    for state, match in bad_states:
        with pytest.raises(ValueError, match=match):
            mmt.load_state_dict(state)
    for a, b in zip(mmt.ema_mean, before["mean"], strict=True):
        torch.testing.assert_close(a, b)


def _all(s: BNLayerStats) -> tuple[torch.Tensor, ...]:
    return s.mean, s.var, s.running_mean, s.running_var


@pytest.mark.parametrize(
    ("momentum", "error", "match"),
    [
        (1.0, ValueError, r"`momentum` to be finite, >= 0.0 and < 1.0, got 1.0"),
        (-0.1, ValueError, "got -0.1"),
        ("0.9", TypeError, "`momentum` to be a number"),
    ],
)
def test_momentum_bad_arguments(momentum: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        BNStatMomentum(momentum)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one weight per layer"):
        BNStatMomentum(layer_weights=[1.0])(_random_stats(0))

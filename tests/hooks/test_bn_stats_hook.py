"""BNStatsHook: statistics equal a manual computation, graph kept, handles removed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ssdkd.hooks import BNLayerStats, BNStatsHook, batchnorm_layers, has_batchnorm


class MixedBN(nn.Module):
    """A conv stage with BatchNorm2d, then a linear stage with BatchNorm1d on (N, C)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn2d = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 5)
        self.bn1d = nn.BatchNorm1d(5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn2d(self.conv(x)))
        return self.bn1d(self.fc(h.flatten(1)))


def _randomised_eval(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial weights and running statistics, eval mode, frozen weights."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        for _, bn in batchnorm_layers(model):
            assert isinstance(bn, nn.modules.batchnorm._BatchNorm)
            bn.running_mean.copy_(torch.randn(bn.num_features, generator=gen))
            bn.running_var.copy_(torch.rand(bn.num_features, generator=gen) + 0.5)
    return model.eval().requires_grad_(False)


def _manual_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and biased variance by moving the channel axis first."""
    flat = x.transpose(0, 1).reshape(x.shape[1], -1).double()
    mean = flat.mean(dim=1)
    var = ((flat - mean[:, None]) ** 2).mean(dim=1)
    return mean.float(), var.float()


@pytest.fixture
def model() -> MixedBN:
    model = _randomised_eval(MixedBN())
    assert isinstance(model, MixedBN)
    return model


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(6, 3, 4, 4, generator=torch.Generator().manual_seed(1))


def test_helpers_find_every_batchnorm_kind() -> None:
    net = nn.Sequential(
        nn.BatchNorm1d(2), nn.BatchNorm2d(2), nn.BatchNorm3d(2), nn.SyncBatchNorm(2),
        nn.InstanceNorm2d(2), nn.LayerNorm(2), nn.GroupNorm(1, 2),
    )  # fmt: skip
    assert [name for name, _ in batchnorm_layers(net)] == ["0", "1", "2", "3"]
    assert has_batchnorm(net)
    assert not has_batchnorm(nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)))
    with pytest.raises(TypeError, match="`model`"):
        batchnorm_layers("not a module")  # type: ignore[arg-type]


def test_stats_equal_manual_computation(model: MixedBN, images: torch.Tensor) -> None:
    with BNStatsHook(model) as bn:
        model(images)
        stats = bn.stats
    conv_out = model.conv(images)
    fc_in = torch.relu(model.bn2d(conv_out)).flatten(1)
    fc_out = model.fc(fc_in)
    assert [s.name for s in stats] == ["bn2d", "bn1d"]
    for s, x, layer in ((stats[0], conv_out, model.bn2d), (stats[1], fc_out, model.bn1d)):
        mean, var = _manual_stats(x)
        torch.testing.assert_close(s.mean, mean)
        torch.testing.assert_close(s.var, var)
        torch.testing.assert_close(s.running_mean, layer.running_mean)
        torch.testing.assert_close(s.running_var, layer.running_var)
        assert s.mean.dtype == s.var.dtype == torch.float32
        assert not s.running_mean.requires_grad


def test_channels_last_gives_the_same_stats(model: MixedBN, images: torch.Tensor) -> None:
    with BNStatsHook(model) as bn:
        model(images)
        reference = bn.stats
    cl_model = _randomised_eval(MixedBN()).to(memory_format=torch.channels_last)
    cl_model.load_state_dict(model.state_dict())
    cl_images = images.contiguous(memory_format=torch.channels_last)
    with BNStatsHook(cl_model) as bn:
        cl_model(cl_images)
        stats = bn.stats
    for got, want in zip(stats, reference, strict=True):
        torch.testing.assert_close(got.mean, want.mean)
        torch.testing.assert_close(got.var, want.var)


def test_batchnorm1d_on_sequences_then_batchnorm3d() -> None:
    net = nn.Sequential(nn.BatchNorm1d(3), nn.Unflatten(2, (2, 2, 2)), nn.BatchNorm3d(3))
    net = _randomised_eval(net)
    x = torch.randn(4, 3, 8, generator=torch.Generator().manual_seed(2))
    with BNStatsHook(net) as bn:
        net(x)
        stats = bn.stats
    torch.testing.assert_close((stats[0].mean, stats[0].var), _manual_stats(x))
    bn3d_in = net[1](net[0](x))
    torch.testing.assert_close((stats[1].mean, stats[1].var), _manual_stats(bn3d_in))


def test_sync_batchnorm_is_recorded() -> None:
    net = nn.Sequential(nn.SyncBatchNorm(3)).eval()
    x = torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(3))
    with BNStatsHook(net) as bn:
        net(x)
        stats = bn.stats
    torch.testing.assert_close((stats[0].mean, stats[0].var), _manual_stats(x))


def test_gradients_reach_the_input(model: MixedBN, images: torch.Tensor) -> None:
    x = images.clone().requires_grad_()
    with BNStatsHook(model) as bn:
        model(x)
        loss = sum(s.mean.square().sum() + s.var.sum() for s in bn.stats)
    assert isinstance(loss, torch.Tensor)
    loss.backward()
    assert x.grad is not None
    assert x.grad.abs().sum() > 0


def _hook_counts(model: nn.Module) -> int:
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


def test_hooks_are_removed_after_the_block(model: MixedBN, images: torch.Tensor) -> None:
    hook = BNStatsHook(model)
    with hook:
        assert _hook_counts(model) == 2
        model(images)
    assert _hook_counts(model) == 0
    assert not hook.is_open


def _forward_then_fail(model: MixedBN, images: torch.Tensor) -> None:
    with BNStatsHook(model):
        model(images)
        raise KeyError("boom")


def test_hooks_are_removed_after_an_exception(model: MixedBN, images: torch.Tensor) -> None:
    with pytest.raises(KeyError, match="boom"):
        _forward_then_fail(model, images)
    assert _hook_counts(model) == 0


def test_the_model_is_not_changed(model: MixedBN, images: torch.Tensor) -> None:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with BNStatsHook(model) as bn:
        model(images)
        _ = bn.stats
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    assert not model.training


def test_training_mode_is_refused_with_a_hint(model: MixedBN, images: torch.Tensor) -> None:
    model.train()
    with pytest.raises(RuntimeError, match=r"teacher\.eval\(\)"), BNStatsHook(model):
        pass
    assert _hook_counts(model) == 0


def test_switching_to_training_mode_inside_the_block_is_refused(
    model: MixedBN, images: torch.Tensor
) -> None:
    def train_inside() -> None:
        with BNStatsHook(model):
            model.train()
            model(images)

    with pytest.raises(RuntimeError, match="training mode"):
        train_inside()
    assert _hook_counts(model) == 0


def test_training_mode_allowed_records_the_stats_before_the_update(
    model: MixedBN, images: torch.Tensor
) -> None:
    model.train()
    running_before = model.bn2d.running_mean.clone()
    with BNStatsHook(model, allow_train_mode=True) as bn:
        model(images)
        stats = bn.stats
    torch.testing.assert_close(stats[0].running_mean, running_before)
    assert not torch.equal(model.bn2d.running_mean, running_before)


def test_entering_twice_raises_and_a_closed_hook_can_be_reused(
    model: MixedBN, images: torch.Tensor
) -> None:
    hook = BNStatsHook(model)
    with hook:
        with pytest.raises(RuntimeError, match="already entered"), hook:
            pass
        assert _hook_counts(model) == 2
    with hook:
        with pytest.raises(RuntimeError, match="have not received an input"):
            _ = hook.stats
        model(images)
        assert len(hook.stats) == 2


def test_stats_before_a_forward_and_after_the_block_raise(
    model: MixedBN, images: torch.Tensor
) -> None:
    with BNStatsHook(model) as bn:
        with pytest.raises(RuntimeError, match=r"\['bn2d', 'bn1d'\] have not received"):
            _ = bn.stats
        model(images)
    with pytest.raises(RuntimeError, match="only available inside its `with` block"):
        _ = bn.stats


def test_a_second_forward_replaces_the_stats(model: MixedBN, images: torch.Tensor) -> None:
    with BNStatsHook(model) as bn:
        model(images)
        model(images * 2.0)
        stats = bn.stats
    torch.testing.assert_close(stats[0].mean, _manual_stats(model.conv(images * 2.0))[0])


def test_explicit_modules_keep_their_order(model: MixedBN, images: torch.Tensor) -> None:
    with BNStatsHook(model, [model.bn1d, model.bn2d]) as bn:
        model(images)
        assert [s.name for s in bn.stats] == ["bn1d", "bn2d"]
    assert _hook_counts(model) == 0


def test_float32_stats_under_autocast(model: MixedBN, images: torch.Tensor) -> None:
    with BNStatsHook(model) as bn, torch.autocast("cpu", dtype=torch.bfloat16):
        model(images)
        stats = bn.stats
    assert all(s.mean.dtype == s.var.dtype == torch.float32 for s in stats)
    conv_out = model.conv(images)  # float32 reference; bf16 rounding bounds the difference
    torch.testing.assert_close(stats[0].mean, _manual_stats(conv_out)[0], atol=0.05, rtol=0.05)


def test_stats_dataclass_is_frozen() -> None:
    s = BNLayerStats("x", torch.zeros(1), torch.ones(1), torch.zeros(1), torch.ones(1))
    with pytest.raises(AttributeError):
        s.name = "y"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda m: BNStatsHook(nn.Linear(2, 2)), ValueError, "`model` to contain BatchNorm"),
        (lambda m: BNStatsHook(m, []), ValueError, "`modules` to name at least one"),
        (lambda m: BNStatsHook(m, m.bn2d), TypeError, "`modules` to be a sequence"),
        (lambda m: BNStatsHook(m, [m.conv]), TypeError, r"`modules\[0\]` to be a BatchNorm"),
        (lambda m: BNStatsHook(m, [nn.BatchNorm1d(2)]), ValueError, "submodule of `model`"),
        (lambda m: BNStatsHook(m, [m.bn2d, m.bn2d]), ValueError, r"`modules\[1\]` repeats"),
        (
            lambda m: BNStatsHook(nn.BatchNorm1d(2, track_running_stats=False)),
            ValueError,
            "track_running_stats=False",
        ),
    ],
)
def test_invalid_arguments_raise(model: MixedBN, make: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        make(model)  # type: ignore[operator]


def test_repr_and_layer_names(model: MixedBN) -> None:
    hook = BNStatsHook(model)
    assert hook.layer_names == ["bn2d", "bn1d"]
    assert repr(hook) == "BNStatsHook(layers=['bn2d', 'bn1d'], closed)"


@pytest.mark.cuda
def test_float32_stats_under_fp16_autocast_on_cuda(model: MixedBN, images: torch.Tensor) -> None:
    cuda_model = model.cuda()
    x = images.cuda().contiguous(memory_format=torch.channels_last).requires_grad_()
    with BNStatsHook(cuda_model) as bn, torch.autocast("cuda", dtype=torch.float16):
        cuda_model(x)
        stats = bn.stats
    assert all(s.mean.dtype == s.var.dtype == torch.float32 for s in stats)
    reference = _manual_stats(cuda_model.conv(x.float()).detach().cpu())
    torch.testing.assert_close(stats[0].mean.detach().cpu(), reference[0], atol=0.01, rtol=0.01)
    torch.testing.assert_close(stats[0].var.detach().cpu(), reference[1], atol=0.01, rtol=0.01)
    (stats[0].var.sum() + stats[1].mean.sum()).backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()

"""FeatureHook records named outputs with their graph and cleans up."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ssdkd.hooks import FeatureHook


@pytest.fixture
def net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def test_records_outputs_with_graph(net: nn.Sequential) -> None:
    x = torch.ones(2, 3, requires_grad=True)
    with FeatureHook(net, ["0", "2"]) as hook:
        assert hook.features == {}
        out = net(x)
        features = hook.features
    torch.testing.assert_close(features["0"], net[0](x))
    assert features["2"] is out
    features["0"].sum().backward()
    assert x.grad is not None
    assert sum(len(m._forward_hooks) for m in net.modules()) == 0


def test_removed_after_exception_and_unreadable_after_exit(net: nn.Sequential) -> None:
    hook = FeatureHook(net, ["1"])

    def forward_then_fail() -> None:
        with hook:
            net(torch.ones(1, 3))
            raise ValueError("inside")

    with pytest.raises(ValueError, match="inside"):
        forward_then_fail()
    assert sum(len(m._forward_hooks) for m in net.modules()) == 0
    with pytest.raises(RuntimeError, match="only available inside"):
        _ = hook.features


def test_non_tensor_output_is_refused() -> None:
    net = nn.LSTM(2, 2, batch_first=True)
    with pytest.raises(TypeError, match="returned tuple"), FeatureHook(net, [""]):
        net(torch.zeros(1, 1, 2))


@pytest.mark.parametrize(
    ("names", "error", "match"),
    [
        ("0", TypeError, "`names` to be a sequence"),
        ([], ValueError, "at least one"),
        (["0", "0"], ValueError, "without repeats"),
        (["9"], ValueError, "got '9'"),
        ([0], TypeError, "`names` to hold strings"),
    ],
)
def test_invalid_names_raise(net: nn.Sequential, names: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        FeatureHook(net, names)  # type: ignore[arg-type]

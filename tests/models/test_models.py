"""Every model: logits shape for each supported image size, BatchNorm, create_model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ssdkd.models import MODELS, create_model

EXPECTED = {
    "resnet18",
    "resnet34",
    "wrn16_1",
    "wrn16_2",
    "wrn40_1",
    "wrn40_2",
    "vgg11_bn",
    "small_cnn",
    "tiny_cnn",
}
LENETS = {"lenet5", "lenet5_bn", "lenet5_half", "lenet5_half_bn"}


def test_registry_holds_the_papers_models_and_the_small_cnns() -> None:
    assert set(MODELS) == EXPECTED | LENETS
    assert isinstance(MODELS, dict)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize(("in_channels", "image_size"), [(1, 8), (1, 28), (3, 32)])
def test_logits_shape_and_batchnorm(name: str, in_channels: int, image_size: int) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, in_channels=in_channels, image_size=image_size)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    logits = model(torch.randn(2, in_channels, image_size, image_size))
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, in_channels, image_size, image_size)).shape == (1, 7)


@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        ("resnet18", 11.17e6),
        ("resnet34", 21.28e6),
        ("wrn16_1", 0.175e6),
        ("wrn40_2", 2.24e6),
        ("vgg11_bn", 9.23e6),
    ],
)
def test_parameter_counts_match_the_cifar_architectures(name: str, parameters: float) -> None:
    model = create_model(name, num_classes=10, in_channels=3, image_size=32)
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - parameters) / parameters < 0.01


def test_cifar_resnet_has_3x3_stem_and_no_maxpool() -> None:
    model = create_model("resnet18")
    assert model.conv1.kernel_size == (3, 3)
    assert model.conv1.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())


def test_small_cnn_is_larger_than_tiny_cnn() -> None:
    def size(name: str) -> int:
        model = create_model(name, in_channels=1, image_size=8)
        return sum(p.numel() for p in model.parameters())

    assert size("small_cnn") > 4 * size("tiny_cnn")


def test_small_cnn_rejects_other_image_sizes() -> None:
    model = create_model("small_cnn", in_channels=1, image_size=8)
    with pytest.raises(ValueError, match="8, 8"):
        model(torch.randn(2, 1, 28, 28))


def test_unknown_model_lists_known_ones() -> None:
    with pytest.raises(ValueError, match=r"resnet18.*tiny_cnn"):
        create_model("resnet50")


@pytest.mark.parametrize("argument", ["num_classes", "in_channels", "image_size"])
def test_non_positive_arguments_raise(argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        create_model("wrn16_1", **{argument: 0})


@pytest.mark.parametrize("name", sorted(LENETS))
@pytest.mark.parametrize(("in_channels", "image_size"), [(1, 28), (1, 32), (3, 32)])
def test_lenets_give_logits_and_have_batchnorm_only_in_the_bn_variants(
    name: str, in_channels: int, image_size: int
) -> None:
    model = create_model(
        name, num_classes=7, in_channels=in_channels, image_size=image_size, seed=0
    )
    assert model(torch.randn(3, in_channels, image_size, image_size)).shape == (3, 7)
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert has_bn == name.endswith("_bn")


@pytest.mark.parametrize(
    ("name", "parameters"),
    # LeNet-5 at 32×32: 156 + 2,416 + 48,120 + 10,164 + 850 (conv/linear with biases).
    [("lenet5", 61_706), ("lenet5_half", 3 * 26 + 8 * 76 + 60 * 201 + 42 * 61 + 10 * 43)],
)
def test_lenet_parameter_counts_are_the_papers(name: str, parameters: int) -> None:
    model = create_model(name, num_classes=10, in_channels=1, image_size=32)
    assert sum(p.numel() for p in model.parameters()) == parameters


def test_a_lenet_refuses_an_image_too_small_for_its_convolutions() -> None:
    with pytest.raises(ValueError, match="`image_size` to be at least 16, got 12"):
        create_model("lenet5", in_channels=1, image_size=12)

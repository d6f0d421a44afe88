"""CIFAR ResNet-18/34 (He et al., 2016): 3×3 stem, no max-pool, four stages of basic blocks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssdkd.models._checks import check_model_args

__all__ = ["BasicBlock", "CifarResNet", "resnet18", "resnet34"]


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers with an identity (or 1×1 conv-BN projection) shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet for small images: 3×3 stem at stride 1, stages of 64/128/256/512 channels
    at strides 1/2/2/2, global average pooling and a linear classifier.

    Args:
        blocks: Basic blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
        num_classes: Output logits.
        in_channels: Input image channels.
        image_size: Input side; any size ≥ 1 works thanks to the global pooling.
    """

    def __init__(
        self,
        blocks: tuple[int, int, int, int],
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 32,
    ) -> None:
        super().__init__()
        check_model_args(num_classes, in_channels, image_size)
        self.conv1 = nn.Conv2d(in_channels, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        stages: list[nn.Module] = []
        in_planes = 64
        for index, (planes, count) in enumerate(zip((64, 128, 256, 512), blocks, strict=True)):
            layers = []
            for block in range(count):
                stride = 2 if index > 0 and block == 0 else 1
                layers.append(BasicBlock(in_planes, planes, stride))
                in_planes = planes
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of normalised images ``(B, C, H, W)``."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


def resnet18(*, num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> CifarResNet:
    """CIFAR ResNet-18 (11.2 M parameters at 10 classes).

    Examples:
        >>> resnet18(num_classes=10, image_size=8)(torch.randn(2, 3, 8, 8)).shape
        torch.Size([2, 10])
    """
    return CifarResNet(
        (2, 2, 2, 2), num_classes=num_classes, in_channels=in_channels, image_size=image_size
    )


def resnet34(*, num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> CifarResNet:
    """CIFAR ResNet-34 (21.3 M parameters at 10 classes), the papers' ResNet teacher."""
    return CifarResNet(
        (3, 4, 6, 3), num_classes=num_classes, in_channels=in_channels, image_size=image_size
    )

"""Wide ResNets WRN-d-k (Zagoruyko & Komodakis, 2016) for small images.

Depth ``d = 6n + 4``: a 3×3 stem, three groups of ``n`` pre-activation basic blocks with
``16k``, ``32k``, ``64k`` channels at strides 1, 2, 2, then BN-ReLU, global average
pooling and a linear classifier. No dropout (as in the distillation papers' teachers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssdkd.models._checks import check_model_args

__all__ = ["WideResNet", "wrn16_1", "wrn16_2", "wrn40_1", "wrn40_2"]


class WideBlock(nn.Module):
    """BN-ReLU-conv3×3-BN-ReLU-conv3×3 with an identity or 1×1-conv shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(pre))))
        # With a projection the shortcut also starts from the pre-activation.
        return out + (x if self.shortcut is None else self.shortcut(pre))


class WideResNet(nn.Module):
    """WRN-``depth``-``widen``.

    Args:
        depth: ``6n + 4`` (16, 22, 28, 40, …).
        widen: Width multiplier ``k``.
        num_classes: Output logits.
        in_channels: Input image channels.
        image_size: Input side; any size ≥ 1 works thanks to the global pooling.
    """

    def __init__(
        self,
        depth: int,
        widen: int,
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 32,
    ) -> None:
        super().__init__()
        check_model_args(num_classes, in_channels, image_size)
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"Expected `depth` of the form 6n + 4 with n >= 1, got {depth}")
        if widen < 1:
            raise ValueError(f"Expected `widen` to be a positive integer, got {widen}")
        per_group = (depth - 4) // 6
        widths = (16 * widen, 32 * widen, 64 * widen)
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        groups: list[nn.Module] = []
        in_planes = 16
        for index, planes in enumerate(widths):
            layers = []
            for block in range(per_group):
                stride = 2 if index > 0 and block == 0 else 1
                layers.append(WideBlock(in_planes, planes, stride))
                in_planes = planes
            groups.append(nn.Sequential(*layers))
        self.block1, self.block2, self.block3 = groups
        self.bn = nn.BatchNorm2d(in_planes)
        self.fc = nn.Linear(in_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of normalised images ``(B, C, H, W)``."""
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = F.relu(self.bn(out))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


def wrn16_1(*, num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> WideResNet:
    """WRN-16-1 (0.18 M parameters), a student of the papers.

    Examples:
        >>> wrn16_1(num_classes=5, in_channels=1, image_size=8)(torch.randn(2, 1, 8, 8)).shape
        torch.Size([2, 5])
    """
    return WideResNet(
        16, 1, num_classes=num_classes, in_channels=in_channels, image_size=image_size
    )


def wrn16_2(*, num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> WideResNet:
    """WRN-16-2 (0.69 M parameters), a student of the papers."""
    return WideResNet(
        16, 2, num_classes=num_classes, in_channels=in_channels, image_size=image_size
    )


def wrn40_1(*, num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> WideResNet:
    """WRN-40-1 (0.57 M parameters), a student of the papers."""
    return WideResNet(
        40, 1, num_classes=num_classes, in_channels=in_channels, image_size=image_size
    )


def wrn40_2(*, num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> WideResNet:
    """WRN-40-2 (2.2 M parameters), the papers' WRN teacher."""
    return WideResNet(
        40, 2, num_classes=num_classes, in_channels=in_channels, image_size=image_size
    )

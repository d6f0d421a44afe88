"""VGG-11 with BatchNorm for small images (Simonyan & Zisserman, 2015; CIFAR variant)."""

from __future__ import annotations

import torch
from torch import nn

from ssdkd.models._checks import check_model_args

__all__ = ["VGG", "vgg11_bn"]

# Configuration "A": channel counts of the 3×3 convolutions, "M" a 2×2 max-pool.
_VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG(nn.Module):
    """VGG with conv-BN-ReLU layers, global average pooling and a linear classifier.

    A max-pool is kept only while the feature map is at least 2 pixels wide, so small
    inputs (8×8, 28×28) work: 32×32 uses all five pools (32 → 1), 8×8 the first three.

    Args:
        config: Channel counts and ``"M"`` (max-pool) markers.
        num_classes: Output logits.
        in_channels: Input image channels.
        image_size: Input side (decides which max-pools are kept).
    """

    def __init__(
        self,
        config: tuple[int | str, ...],
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 32,
    ) -> None:
        super().__init__()
        check_model_args(num_classes, in_channels, image_size)
        layers: list[nn.Module] = []
        channels, size = in_channels, image_size
        for item in config:
            if item == "M":
                if size >= 2:
                    layers.append(nn.MaxPool2d(2))
                    size //= 2
                continue
            assert isinstance(item, int)
            layers += [
                nn.Conv2d(channels, item, 3, padding=1, bias=False),
                nn.BatchNorm2d(item),
                nn.ReLU(inplace=True),
            ]
            channels = item
        self.image_size = image_size
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of normalised images ``(B, C, image_size, image_size)``."""
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def vgg11_bn(*, num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> VGG:
    """VGG-11-BN (9.2 M parameters at 10 classes), a teacher of the papers.

    Examples:
        >>> vgg11_bn(num_classes=10, image_size=8)(torch.randn(2, 3, 8, 8)).shape
        torch.Size([2, 10])
    """
    return VGG(_VGG11, num_classes=num_classes, in_channels=in_channels, image_size=image_size)

"""LeNet-5 and LeNet-5-half, the MNIST networks of DAFL and DFAD, with and without BN.

LeNet-5: conv5×5 (6) → ReLU → max-pool 2 → conv5×5 (16) → ReLU → max-pool 2 → conv (120)
over the whole remaining map → ReLU → linear 84 → ReLU → linear ``num_classes``.
LeNet-5-half halves every width (3, 8, 60, 42). At the papers' 32×32 input the third
convolution is 5×5 on a 5×5 map; at 28×28 (Fashion-MNIST and MNIST without padding) the
map is 4×4 and the third convolution 4×4, so the network keeps its layers and widths
and has fewer weights in that layer (16·120·16 instead of 16·120·25). The ``_bn``
variants put a BatchNorm after each convolution and after the 84-wide layer, for the
methods whose generator loss matches BN statistics (DFQ, DeepInversion, Fast-DFKD,
SSD-KD); the plain variants are the papers' networks.
"""

from __future__ import annotations

import torch
from torch import nn

from ssdkd.models._checks import check_model_args

__all__ = ["LeNet5", "lenet5", "lenet5_bn", "lenet5_half", "lenet5_half_bn"]


class LeNet5(nn.Module):
    """LeNet-5 of the given widths, optionally with BatchNorm.

    Args:
        widths: Channels of the three convolutions and the width of the hidden linear
            layer (``(6, 16, 120, 84)`` for LeNet-5).
        batchnorm: A BatchNorm after each convolution and the hidden linear layer.
        num_classes: Output logits.
        in_channels: Input image channels.
        image_size: Input side, at least 16 (the third convolution spans what is left
            after two 5×5 convolutions and two pools).

    Raises:
        ValueError: A non-positive argument, or ``image_size`` below 16.
    """

    def __init__(
        self,
        widths: tuple[int, int, int, int],
        *,
        batchnorm: bool = False,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 32,
    ) -> None:
        super().__init__()
        check_model_args(num_classes, in_channels, image_size)
        last = ((image_size - 4) // 2 - 4) // 2
        if last < 1:
            raise ValueError(f"Expected `image_size` to be at least 16, got {image_size}")
        c1, c2, c3, hidden = widths

        def norm2d(channels: int) -> list[nn.Module]:
            return [nn.BatchNorm2d(channels)] if batchnorm else []

        self.image_size = image_size
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5, bias=not batchnorm),
            *norm2d(c1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5, bias=not batchnorm),
            *norm2d(c2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, last, bias=not batchnorm),
            *norm2d(c3),
            nn.ReLU(inplace=True),
            nn.Flatten(),
            nn.Linear(c3, hidden, bias=not batchnorm),
            *([nn.BatchNorm1d(hidden)] if batchnorm else []),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of normalised images ``(B, C, S, S)``."""
        if x.dim() != 4 or x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(
                f"Expected images (B, C, {self.image_size}, {self.image_size}), "
                f"got {tuple(x.shape)}"
            )
        return self.classifier(self.features(x))


_FULL = (6, 16, 120, 84)
_HALF = (3, 8, 60, 42)


def lenet5(*, num_classes: int = 10, in_channels: int = 1, image_size: int = 32) -> LeNet5:
    """LeNet-5 without BatchNorm (the DAFL/DFAD MNIST teacher).

    Examples:
        >>> lenet5()(torch.randn(2, 1, 32, 32)).shape
        torch.Size([2, 10])
    """
    return LeNet5(_FULL, num_classes=num_classes, in_channels=in_channels, image_size=image_size)


def lenet5_bn(*, num_classes: int = 10, in_channels: int = 1, image_size: int = 32) -> LeNet5:
    """LeNet-5 with BatchNorm.

    Examples:
        >>> lenet5_bn(image_size=28)(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    return LeNet5(
        _FULL,
        batchnorm=True,
        num_classes=num_classes,
        in_channels=in_channels,
        image_size=image_size,
    )


def lenet5_half(*, num_classes: int = 10, in_channels: int = 1, image_size: int = 32) -> LeNet5:
    """LeNet-5-half without BatchNorm (the DAFL/DFAD MNIST student).

    Examples:
        >>> lenet5_half()(torch.randn(2, 1, 32, 32)).shape
        torch.Size([2, 10])
    """
    return LeNet5(_HALF, num_classes=num_classes, in_channels=in_channels, image_size=image_size)


def lenet5_half_bn(*, num_classes: int = 10, in_channels: int = 1, image_size: int = 32) -> LeNet5:
    """LeNet-5-half with BatchNorm.

    Examples:
        >>> lenet5_half_bn(image_size=28)(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    return LeNet5(
        _HALF,
        batchnorm=True,
        num_classes=num_classes,
        in_channels=in_channels,
        image_size=image_size,
    )

"""Small BatchNorm CNNs for 8×8 (digits) and 28×28 (Fashion-MNIST) inputs; 32×32 works too.

Both are stacks of conv3×3-BN-ReLU layers with 2×2 max-pools chosen by the input size
(so the last feature map is 4×4 at 8×8 input and 7×7 / 8×8 at 28×28 / 32×32), followed
by flattening and a linear classifier. ``small_cnn`` is the teacher size, ``tiny_cnn``
the student size.
"""

from __future__ import annotations

import torch
from torch import nn

from ssdkd.models._checks import check_model_args

__all__ = ["SmallCNN", "small_cnn", "tiny_cnn"]


def _conv_bn(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class SmallCNN(nn.Module):
    """conv-BN-ReLU layers of the given widths, max-pools, flatten, linear.

    The pools follow the layers listed in ``pool_after`` (layer indices), and only while
    the map is still at least ``min_pool_size`` pixels wide before pooling; small inputs
    therefore skip the early pools.

    Args:
        widths: Output channels of each convolution.
        pool_after: Indices of the convolutions followed by a 2×2 max-pool.
        num_classes: Output logits.
        in_channels: Input image channels.
        image_size: Input side (fixes the pools and the classifier's input size).
        min_pool_size: Smallest map side that is still pooled.
    """

    def __init__(
        self,
        widths: tuple[int, ...],
        pool_after: tuple[int, ...],
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 32,
        min_pool_size: int = 8,
    ) -> None:
        super().__init__()
        check_model_args(num_classes, in_channels, image_size)
        # Pool the deepest layers first when the image is small: an 8×8 digit keeps its
        # resolution through the early layers and is pooled once, at the end.
        size, pooled = image_size, set()
        for index in sorted(pool_after, reverse=True):
            if size >= min_pool_size:
                pooled.add(index)
                size //= 2
        layers: list[nn.Module] = []
        channels = in_channels
        for index, width in enumerate(widths):
            layers += _conv_bn(channels, width)
            if index in pooled:
                layers.append(nn.MaxPool2d(2))
            channels = width
        self.image_size = image_size
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels * size * size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of normalised images ``(B, C, image_size, image_size)``."""
        if x.dim() != 4 or x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(
                f"Expected images (B, C, {self.image_size}, {self.image_size}), "
                f"got {tuple(x.shape)}"
            )
        return self.classifier(torch.flatten(self.features(x), 1))


def small_cnn(*, num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> SmallCNN:
    """Teacher-size CNN: convolutions of 32, 64, 128 channels, pools after the 1st and 2nd
    (8×8 input: one pool, 4×4 maps; 28×28: two pools, 7×7 maps).

    Examples:
        >>> net = small_cnn(num_classes=10, in_channels=1, image_size=8)
        >>> net(torch.randn(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """
    return SmallCNN(
        (32, 64, 128),
        (0, 1),
        num_classes=num_classes,
        in_channels=in_channels,
        image_size=image_size,
    )


def tiny_cnn(*, num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> SmallCNN:
    """Student-size CNN: convolutions of 16 and 32 channels (8×8 input: one pool; 28×28: two).

    Examples:
        >>> tiny_cnn(num_classes=10, in_channels=1, image_size=28)(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    return SmallCNN(
        (16, 32),
        (0, 1),
        num_classes=num_classes,
        in_channels=in_channels,
        image_size=image_size,
    )

"""The :class:`Dataset` record and the errors of the dataset loaders."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Dataset", "DatasetFormatError", "DatasetNotFoundError", "channel_stats", "from_uint8"]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where they were looked for; the message says how to get them."""


class DatasetFormatError(ValueError):
    """A dataset file exists but is corrupt or of the wrong format; the message names it."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Real images with a train / held-out split, ready for teacher training and evaluation.

    Attributes:
        name: The dataset's name, as passed to :func:`~ssdkd.data.load_dataset`.
        x_train: Training images ``(N, C, H, W)``, float32 in [0, 1].
        y_train: Training labels ``(N,)``, int64 in ``[0, num_classes)``.
        x_test: Held-out images ``(M, C, H, W)``, float32 in [0, 1].
        y_test: Held-out labels ``(M,)``, int64.
        num_classes: Number of classes.
        mean: Per-channel mean of ``x_train`` (over images and pixels).
        std: Per-channel standard deviation of ``x_train`` (population, over images and
            pixels). Models are trained on ``(x − mean) / std``.

    Examples:
        >>> x = torch.rand(4, 1, 2, 2)
        >>> y = torch.tensor([0, 1, 0, 1])
        >>> data = Dataset("toy", x, y, x, y, 2, *channel_stats(x))
        >>> data.image_shape
        (1, 2, 2)
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != torch.float32 or x.dim() != 4:
                raise ValueError(
                    f"Expected `x_{split}` to be float32 (N, C, H, W), "
                    f"got {x.dtype} {tuple(x.shape)}"
                )
            if y.dtype != torch.int64 or y.shape != (x.shape[0],):
                raise ValueError(
                    f"Expected `y_{split}` to be int64 of shape ({x.shape[0]},), "
                    f"got {y.dtype} {tuple(y.shape)}"
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                "Expected training and held-out images of the same shape, got "
                f"{tuple(self.x_train.shape[1:])} and {tuple(self.x_test.shape[1:])}"
            )
        channels = self.x_train.shape[1]
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(
                f"Expected `mean` and `std` with {channels} entries, "
                f"got {len(self.mean)} and {len(self.std)}"
            )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        channels, height, width = self.x_train.shape[1:]
        return int(channels), int(height), int(width)


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and population standard deviation of images ``(N, C, H, W)``.

    A channel with zero spread gets std 1 so that normalising never divides by zero.

    Examples:
        >>> channel_stats(torch.tensor([[[[0.0, 1.0]]]]))
        ((0.5,), (0.5,))
    """
    values = x.transpose(0, 1).reshape(x.shape[1], -1).double()
    mean = values.mean(dim=1)
    std = values.std(dim=1, correction=0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def from_uint8(images: np.ndarray) -> torch.Tensor:
    """uint8 images ``(N, C, H, W)`` → float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32) / 255.0)

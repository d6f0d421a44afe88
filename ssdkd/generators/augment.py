"""Differentiable image augmentation with an explicit :class:`torch.Generator`.

Every function draws one set of random parameters per sample from the given generator
and moves pixels with index gathers, so the output is differentiable with respect to the
input images (the random parameters themselves are discrete and carry no gradient).
Parameters are drawn on the generator's device and then moved to the images' device, so
a CPU generator also drives augmentation of CUDA images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Augment",
    "Normalize",
    "channel_values",
    "normalize",
    "random_crop",
    "random_flip",
    "random_mixup",
    "random_roll",
]


def _check_images(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"Expected `x` to be a (B, C, H, W) tensor, got {shape}")


def _randint(
    high: int, size: int, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """``size`` integers in ``[0, high)`` from ``generator``, returned on ``device``."""
    source = generator.device if generator is not None else device
    return torch.randint(0, high, (size,), generator=generator, device=source).to(device)


def _shift_gather(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``out[b, c, i, j] = x[b, c, rows[b, i], cols[b, j]]``; ``rows`` (B, H'), ``cols`` (B, W')."""
    batch, channels, _, width = x.shape
    row_index = rows[:, None, :, None].expand(batch, channels, rows.shape[1], width)
    picked_rows = x.gather(2, row_index)
    col_index = cols[:, None, None, :].expand(batch, channels, rows.shape[1], cols.shape[1])
    return picked_rows.gather(3, col_index)


def random_crop(
    x: torch.Tensor, padding: int, *, generator: torch.Generator | None
) -> torch.Tensor:
    """Zero-pad by ``padding`` on every side, then crop back to ``(H, W)`` at a random offset.

    Equivalent to torchvision's ``RandomCrop(size, padding)`` applied independently to
    each sample: every image is translated by ``(dy, dx) ∈ [-padding, padding]²`` and the
    uncovered border is filled with zeros.

    Args:
        x: Images ``(B, C, H, W)``.
        padding: Zero padding in pixels (``0`` returns ``x`` unchanged).
        generator: Random source of the offsets (``None``: the global generator).

    Returns:
        Cropped images ``(B, C, H, W)``.

    Examples:
        >>> x = torch.arange(16.0).view(1, 1, 4, 4)
        >>> y = random_crop(x, 1, generator=torch.Generator().manual_seed(0))
        >>> y.shape
        torch.Size([1, 1, 4, 4])
    """
    _check_images(x)
    if padding < 0:
        raise ValueError(f"Expected `padding` to be >= 0, got {padding}")
    if padding == 0:
        return x
    batch, _, height, width = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    top = _randint(2 * padding + 1, batch, generator, x.device)
    left = _randint(2 * padding + 1, batch, generator, x.device)
    rows = top[:, None] + torch.arange(height, device=x.device)
    cols = left[:, None] + torch.arange(width, device=x.device)
    return _shift_gather(padded, rows, cols)


def random_flip(
    x: torch.Tensor, *, generator: torch.Generator | None, p: float = 0.5
) -> torch.Tensor:
    """Mirror each image horizontally with probability ``p``.

    Args:
        x: Images ``(B, C, H, W)``.
        generator: Random source of the coin flips (``None``: the global generator).
        p: Probability of flipping a sample.

    Returns:
        Images ``(B, C, H, W)``.

    Examples:
        >>> x = torch.tensor([[[[0.0, 1.0]]]])
        >>> random_flip(x, generator=None, p=1.0)
        tensor([[[[1., 0.]]]])
    """
    _check_images(x)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"Expected `p` to be in [0, 1], got {p}")
    source = generator.device if generator is not None else x.device
    coins = torch.rand(x.shape[0], generator=generator, device=source).to(x.device)
    return torch.where((coins < p)[:, None, None, None], x.flip(-1), x)


def random_roll(
    x: torch.Tensor, max_shift: int, *, generator: torch.Generator | None
) -> torch.Tensor:
    """Circularly shift each image by a random ``(dy, dx) ∈ [-max_shift, max_shift]²``.

    DeepInversion's "jitter": unlike :func:`random_crop` no pixel is lost, the image
    wraps around its borders.

    Args:
        x: Images ``(B, C, H, W)``.
        max_shift: Largest shift in pixels along each axis (``0`` returns ``x``).
        generator: Random source of the shifts (``None``: the global generator).

    Returns:
        Rolled images ``(B, C, H, W)``.

    Examples:
        >>> x = torch.arange(4.0).view(1, 1, 1, 4)
        >>> random_roll(x, 1, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([1, 1, 1, 4])
    """
    _check_images(x)
    if max_shift < 0:
        raise ValueError(f"Expected `max_shift` to be >= 0, got {max_shift}")
    if max_shift == 0:
        return x
    batch, _, height, width = x.shape
    dy = _randint(2 * max_shift + 1, batch, generator, x.device) - max_shift
    dx = _randint(2 * max_shift + 1, batch, generator, x.device) - max_shift
    # out[i] = x[(i - dy) mod H]: a positive shift moves the content down/right.
    rows = (torch.arange(height, device=x.device) - dy[:, None]) % height
    cols = (torch.arange(width, device=x.device) - dx[:, None]) % width
    return _shift_gather(x, rows, cols)


def random_mixup(x: torch.Tensor, *, generator: torch.Generator | None) -> torch.Tensor:
    """Blend each image with one of the batch: ``λ_i x_i + (1 − λ_i) x_π(i)``.

    π is a random permutation of the batch (an image may be its own partner, about one
    per batch) and ``λ_i ~ U(0.5, 1)`` (mixup with Beta(1, 1), folded so that ``x_i``
    keeps the larger share). Meant for distillation, where the teacher labels the blended
    image itself ("function matching"), so no label is mixed; with ``λ_i ≥ 0.5`` a
    per-sample quantity of the blend (its KL, say) stays attributable to ``x_i``.

    Args:
        x: Images ``(B, C, H, W)``.
        generator: Random source of π and λ (``None``: the global generator).

    Returns:
        Blended images ``(B, C, H, W)``: convex combinations, so within the range of
        ``x``'s values up to rounding.

    Raises:
        ValueError: ``x`` is not a floating-point ``(B, C, H, W)`` tensor.

    Examples:
        >>> x = torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)])
        >>> y = random_mixup(x, generator=torch.Generator().manual_seed(1))
        >>> y.shape, bool(((y >= 0) & (y <= 1)).all())
        (torch.Size([2, 1, 2, 2]), True)
    """
    _check_images(x)
    if not x.is_floating_point():
        raise ValueError(f"Expected `x` to be a floating-point tensor, got {x.dtype}")
    batch = x.shape[0]
    source = generator.device if generator is not None else x.device
    partner = torch.randperm(batch, generator=generator, device=source).to(x.device)
    lam = 0.5 + 0.5 * torch.rand(batch, generator=generator, device=source).to(x.device)
    lam = lam.to(x.dtype).view(batch, 1, 1, 1)
    return lam * x + (1 - lam) * x[partner]


def channel_values(name: str, values: float | Sequence[float]) -> tuple[float, ...]:
    """``values`` as a tuple of finite floats, one per channel; a bare number is one channel.

    Examples:
        >>> channel_values("mean", 0.13), channel_values("std", [0.3, 0.4])
        ((0.13,), (0.3, 0.4))
    """
    wrong_type = f"Expected `{name}` to be a number or a sequence of numbers, got {values!r}"
    if isinstance(values, (bool, str)):
        raise TypeError(wrong_type)
    if isinstance(values, (int, float)):
        result: tuple[float, ...] = (float(values),)
    else:
        try:
            result = tuple(float(v) for v in values)
        except (TypeError, ValueError):
            raise TypeError(wrong_type) from None
    if not result or not all(math.isfinite(v) for v in result):
        raise ValueError(f"Expected `{name}` to be one or more finite numbers, got {values!r}")
    return result


def _check_std(std: tuple[float, ...]) -> None:
    if not all(s > 0 for s in std):
        raise ValueError(f"Expected every `std` entry to be > 0, got {list(std)}")


def normalize(
    x: torch.Tensor,
    mean: float | Sequence[float] | torch.Tensor,
    std: float | Sequence[float] | torch.Tensor,
) -> torch.Tensor:
    """Per-channel ``(x − mean) / std``: what the models of :mod:`ssdkd.models` take.

    Numbers are checked on the host; a ``std`` tensor is checked on its device, which reads
    it back (a sync on CUDA). In a loop, :class:`Normalize` checks once and keeps the
    statistics on the images' device.

    Args:
        x: Images ``(B, C, H, W)`` in [0, 1].
        mean: ``C`` channel means (a number for single-channel images).
        std: ``C`` positive channel standard deviations (a number for one channel).

    Returns:
        Normalised images ``(B, C, H, W)`` in the dtype of ``x``.

    Examples:
        >>> normalize(torch.ones(1, 2, 1, 1), (0.5, 0.0), (0.5, 2.0)).flatten()
        tensor([1.0000, 0.5000])
    """
    _check_images(x)
    if not isinstance(mean, torch.Tensor):
        mean = channel_values("mean", mean)
    if not isinstance(std, torch.Tensor):
        std = channel_values("std", std)
        _check_std(std)
    mean_t = torch.as_tensor(mean, dtype=x.dtype, device=x.device).flatten()
    std_t = torch.as_tensor(std, dtype=x.dtype, device=x.device).flatten()
    _check_channels(x, mean_t.numel(), std_t.numel())
    if isinstance(std, torch.Tensor) and not bool((std_t > 0).all()):
        raise ValueError(f"Expected every `std` entry to be > 0, got {std_t.tolist()}")
    return (x - mean_t[:, None, None]) / std_t[:, None, None]


def _check_channels(x: torch.Tensor, means: int, stds: int) -> None:
    channels = x.shape[1]
    if means != channels or stds != channels:
        raise ValueError(
            f"Expected `mean` and `std` to have {channels} entries (one per channel of `x`), "
            f"got {means} and {stds}"
        )


class Normalize(nn.Module):
    """Module twin of :func:`normalize` with fixed ``mean`` and ``std``.

    The statistics are checked once, here; each forward reuses a copy on the images'
    device and dtype, so the hot path neither copies host → device nor reads anything back.

    Examples:
        >>> Normalize((0.5,), (0.25,))(torch.ones(1, 1, 1, 1)).item()
        2.0
    """

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]) -> None:
        super().__init__()
        self.mean = channel_values("mean", mean)
        self.std = channel_values("std", std)
        if len(self.mean) != len(self.std):
            raise ValueError(
                f"Expected `mean` and `std` of equal length, got {len(self.mean)} and "
                f"{len(self.std)}"
            )
        _check_std(self.std)
        self._cache: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x)
        _check_channels(x, len(self.mean), len(self.std))
        key = (x.device, x.dtype)
        if key not in self._cache:
            self._cache[key] = (
                torch.tensor(self.mean, dtype=x.dtype, device=x.device)[:, None, None],
                torch.tensor(self.std, dtype=x.dtype, device=x.device)[:, None, None],
            )
        mean_t, std_t = self._cache[key]
        return (x - mean_t) / std_t

    def extra_repr(self) -> str:
        return f"mean={self.mean}, std={self.std}"


class Augment(nn.Module):
    """Random crop → horizontal flip → roll → normalisation, in that order.

    Each step is skipped when disabled (``crop_padding=0``, ``flip=False``, ``roll=0``,
    ``mean=std=None``). The module holds no random state: pass the generator to
    :meth:`forward`.

    Args:
        crop_padding: Zero padding of :func:`random_crop` (Fast-DFKD: 4 on CIFAR).
        flip: Apply :func:`random_flip` with probability 0.5.
        roll: ``max_shift`` of :func:`random_roll` (DeepInversion's jitter).
        mean: Channel means for :func:`normalize` (give both ``mean`` and ``std`` or neither).
        std: Channel standard deviations for :func:`normalize`.

    Examples:
        >>> augment = Augment(crop_padding=2, flip=True)
        >>> x = torch.rand(3, 1, 8, 8)
        >>> a = augment(x, generator=torch.Generator().manual_seed(1))
        >>> b = augment(x, generator=torch.Generator().manual_seed(1))
        >>> a.shape, torch.equal(a, b)
        (torch.Size([3, 1, 8, 8]), True)
    """

    def __init__(
        self,
        *,
        crop_padding: int = 4,
        flip: bool = True,
        roll: int = 0,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if crop_padding < 0:
            raise ValueError(f"Expected `crop_padding` to be >= 0, got {crop_padding}")
        if roll < 0:
            raise ValueError(f"Expected `roll` to be >= 0, got {roll}")
        if (mean is None) != (std is None):
            raise ValueError("Expected `mean` and `std` to be given together or both omitted")
        self.crop_padding = crop_padding
        self.flip = flip
        self.roll = roll
        self.normalize = None if mean is None or std is None else Normalize(mean, std)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment ``x`` ``(B, C, H, W)`` with per-sample parameters drawn from ``generator``."""
        x = random_crop(x, self.crop_padding, generator=generator)
        if self.flip:
            x = random_flip(x, generator=generator)
        x = random_roll(x, self.roll, generator=generator)
        if self.normalize is not None:
            x = self.normalize(x)
        return x

    def extra_repr(self) -> str:
        return f"crop_padding={self.crop_padding}, flip={self.flip}, roll={self.roll}"

"""DeepInversion's image priors: total variation and the L2 norm of the image."""

from __future__ import annotations

from torch import Tensor, nn

from ssdkd.losses._checks import check_float_tensor, check_reduction, reduce_batch

__all__ = ["ImageL2Loss", "TotalVariationLoss", "image_l2", "total_variation"]


def _check_p(p: object) -> int:
    if isinstance(p, bool) or not isinstance(p, int) or p not in (1, 2):
        raise ValueError(f"Expected `p` to be 1 or 2, got {p!r}")
    return p


def total_variation(images: Tensor, *, p: int = 1, reduction: str = "none") -> Tensor:
    """Anisotropic total variation of each image (a smoothness prior).

    TV_p(x) = mean_{c,h,w} |x[c,h,w+1] − x[c,h,w]|^p + mean_{c,h,w} |x[c,h+1,w] − x[c,h,w]|^p

    i.e. the mean over horizontal neighbour pairs plus the mean over vertical ones. The
    means (rather than sums) make the weight of the prior independent of the image size;
    p = 2 squares the differences, which keeps the prior smooth where neighbours are equal.

    Args:
        images: ``(B, C, H, W)`` with H ≥ 2 and W ≥ 2.
        p: 1 (L1, edges stay sharp) or 2 (squared differences).
        reduction: ``"none"`` → ``(B,)``, ``"mean"`` or ``"sum"`` over the batch.

    Returns:
        ``(B,)`` or a scalar, ≥ 0.

    Raises:
        TypeError: ``images`` is not a floating-point tensor.
        ValueError: Wrong shape, ``p`` not 1 or 2, or unknown reduction.

    Examples:
        >>> import torch
        >>> x = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])  # one vertical edge
        >>> total_variation(x)  # horizontal pairs differ by 1, vertical pairs by 0
        tensor([1.])
        >>> total_variation(2 * x, p=2)
        tensor([4.])
    """
    images = check_float_tensor("images", images)
    if images.dim() != 4 or images.shape[0] == 0 or images.shape[2] < 2 or images.shape[3] < 2:
        raise ValueError(
            f"Expected `images` to have shape (B, C, H, W) with B >= 1, H >= 2 and W >= 2, "
            f"got {tuple(images.shape)}"
        )
    power = _check_p(p)
    reduction = check_reduction(reduction)
    dx = images[:, :, :, 1:] - images[:, :, :, :-1]
    dy = images[:, :, 1:, :] - images[:, :, :-1, :]
    if power == 1:
        dx, dy = dx.abs(), dy.abs()
    else:
        dx, dy = dx.square(), dy.square()
    per_image = dx.flatten(1).mean(dim=1) + dy.flatten(1).mean(dim=1)
    return reduce_batch(per_image, reduction)


def image_l2(images: Tensor, reduction: str = "none") -> Tensor:
    """Euclidean norm of each image, ‖x_i‖₂ over all of its values (keeps pixels small).

    Args:
        images: ``(B, ...)``, e.g. ``(B, C, H, W)``, with B ≥ 1.
        reduction: ``"none"`` → ``(B,)``, ``"mean"`` or ``"sum"`` over the batch.

    Returns:
        ``(B,)`` or a scalar, ≥ 0.

    Raises:
        TypeError: ``images`` is not a floating-point tensor.
        ValueError: ``images`` has fewer than 2 dimensions or no sample; unknown reduction.

    Examples:
        >>> import torch
        >>> image_l2(torch.tensor([[3.0, 4.0], [0.0, 1.0]]))
        tensor([5., 1.])
    """
    images = check_float_tensor("images", images)
    if images.dim() < 2 or images.shape[0] == 0:
        raise ValueError(
            f"Expected `images` to have shape (B, ...) with B >= 1 and at least 2 dimensions, "
            f"got {tuple(images.shape)}"
        )
    reduction = check_reduction(reduction)
    return reduce_batch(images.flatten(1).norm(dim=1), reduction)


class TotalVariationLoss(nn.Module):
    """Module twin of :func:`total_variation`.

    Examples:
        >>> import torch
        >>> TotalVariationLoss(p=2, reduction="sum")(torch.zeros(3, 1, 4, 4))
        tensor(0.)
    """

    def __init__(self, p: int = 1, reduction: str = "none") -> None:
        super().__init__()
        self.p = _check_p(p)
        self.reduction = check_reduction(reduction)

    def forward(self, images: Tensor) -> Tensor:
        """See :func:`total_variation`."""
        return total_variation(images, p=self.p, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"p={self.p}, reduction={self.reduction!r}"


class ImageL2Loss(nn.Module):
    """Module twin of :func:`image_l2`.

    Examples:
        >>> import torch
        >>> ImageL2Loss(reduction="mean")(torch.tensor([[3.0, 4.0], [0.0, 1.0]]))
        tensor(3.)
    """

    def __init__(self, reduction: str = "none") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, images: Tensor) -> Tensor:
        """See :func:`image_l2`."""
        return image_l2(images, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"

"""Classification accuracy of a model on held-out data."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ssdkd.generators import normalize as normalize_images

__all__ = ["evaluate_accuracy", "model_device"]


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for an empty model)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def evaluate_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int = 512,
    device: torch.device | str | None = None,
    normalize: tuple[Sequence[float], Sequence[float]] | None = None,
) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)``, in eval mode and without gradients.

    The model's training flag is restored afterwards.

    Args:
        model: A classifier returning logits ``(B, num_classes)``.
        x: Images ``(N, C, H, W)`` (any device): already normalised, or in [0, 1] with
            ``normalize`` given.
        y: Labels ``(N,)``.
        batch_size: Images per forward pass.
        device: Where to run the model (default: the model's device).
        normalize: ``(mean, std)`` to apply as ``(x − mean) / std`` to each batch — the
            teachers of :mod:`ssdkd.engine.teacher` expect this with their stored mean/std.

    Returns:
        The fraction of correct predictions in [0, 1].

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2))
        >>> with torch.no_grad():
        ...     _ = model[1].weight.copy_(torch.eye(2))
        ...     _ = model[1].bias.zero_()
        >>> x = torch.tensor([[[[1.0, 0.0]]], [[[0.0, 1.0]]], [[[1.0, 0.0]]]])
        >>> evaluate_accuracy(model, x, torch.tensor([0, 1, 1]))
        0.6666666666666666
    """
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(
            f"Expected `x` and `y` with the same, non-zero number of samples, "
            f"got {x.shape[0]} and {y.shape[0]}"
        )
    if batch_size < 1:
        raise ValueError(f"Expected `batch_size` to be a positive integer, got {batch_size}")
    target = model_device(model) if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    try:
        correct = torch.zeros((), dtype=torch.int64, device=target)
        for start in range(0, x.shape[0], batch_size):
            batch = x[start : start + batch_size].to(target)
            if normalize is not None:
                batch = normalize_images(batch, *normalize)
            predictions = model(batch).argmax(dim=1)
            correct += (predictions == y[start : start + batch_size].to(target)).sum()
    finally:
        model.train(was_training)
    return int(correct) / x.shape[0]

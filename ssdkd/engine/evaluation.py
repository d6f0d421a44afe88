"""Predictions and classification accuracy of a model on held-out data."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ssdkd.generators import normalize as normalize_images

__all__ = ["accuracy_of", "evaluate_accuracy", "evaluate_predictions", "model_device"]


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for an empty model)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _check_samples(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(
            f"Expected `x` and `y` with the same, non-zero number of samples, "
            f"got {x.shape[0]} and {y.shape[0]}"
        )


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"Expected `batch_size` to be a positive integer, got {batch_size}")


@torch.no_grad()
def evaluate_predictions(
    model: nn.Module,
    x: torch.Tensor,
    *,
    batch_size: int = 512,
    device: torch.device | str | None = None,
    normalize: tuple[Sequence[float], Sequence[float]] | None = None,
) -> torch.Tensor:
    """Top-1 predicted classes of ``model`` on ``x``, in eval mode and without gradients.

    The model's training flag is restored afterwards.

    Args:
        model: A classifier returning logits ``(B, num_classes)``.
        x: Images ``(N, C, H, W)`` with N ≥ 1 (any device): already normalised, or in
            [0, 1] with ``normalize`` given.
        batch_size: Images per forward pass.
        device: Where to run the model (default: the model's device).
        normalize: ``(mean, std)`` to apply as ``(x − mean) / std`` to each batch — the
            teachers of :mod:`ssdkd.engine.teacher` expect this with their stored mean/std.

    Returns:
        ``(N,)`` int64 class indices (the argmax of the logits), on the model's device.

    Examples:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2))
        >>> with torch.no_grad():
        ...     _ = model[1].weight.copy_(torch.eye(2))
        ...     _ = model[1].bias.zero_()
        >>> evaluate_predictions(model, torch.tensor([[[[1.0, 0.0]]], [[[0.0, 1.0]]]]))
        tensor([0, 1])
    """
    if x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(
            f"Expected `x` to hold a non-zero number of images, got shape {tuple(x.shape)}"
        )
    _check_batch_size(batch_size)
    target = model_device(model) if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    try:
        predictions = []
        for start in range(0, x.shape[0], batch_size):
            batch = x[start : start + batch_size].to(target)
            if normalize is not None:
                batch = normalize_images(batch, *normalize)
            predictions.append(model(batch).argmax(dim=1))
    finally:
        model.train(was_training)
    return torch.cat(predictions)


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

    The model's training flag is restored afterwards. To get the predictions too (for
    diagnostics), call :func:`evaluate_predictions` and :func:`accuracy_of` instead.

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

    Examples:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2))
        >>> with torch.no_grad():
        ...     _ = model[1].weight.copy_(torch.eye(2))
        ...     _ = model[1].bias.zero_()
        >>> x = torch.tensor([[[[1.0, 0.0]]], [[[0.0, 1.0]]], [[[1.0, 0.0]]]])
        >>> evaluate_accuracy(model, x, torch.tensor([0, 1, 1]))
        0.6666666666666666
    """
    _check_samples(x, y)
    _check_batch_size(batch_size)
    predictions = evaluate_predictions(
        model, x, batch_size=batch_size, device=device, normalize=normalize
    )
    return accuracy_of(predictions, y)


def accuracy_of(predictions: torch.Tensor, y: torch.Tensor) -> float:
    """The share of ``predictions`` ``(N,)`` equal to the labels ``y`` ``(N,)``, N ≥ 1.

    Examples:
        >>> accuracy_of(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]))
        0.75
    """
    if predictions.shape != y.shape or predictions.dim() != 1 or y.shape[0] == 0:
        raise ValueError(
            "Expected `predictions` and `y` of the same non-empty shape (N,), got "
            f"{tuple(predictions.shape)} and {tuple(y.shape)}"
        )
    correct = (predictions == y.to(predictions.device)).sum()
    return int(correct) / y.shape[0]

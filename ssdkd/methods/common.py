"""Pieces every method shares: the frozen teacher, the input mapping and the transfer pool."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from ssdkd.generators import Normalize
from ssdkd.hooks import has_batchnorm

__all__ = ["ModelInput", "TransferPool", "freeze_teacher", "frozen_weights"]


def freeze_teacher(teacher: nn.Module, *, needs_batchnorm: bool) -> nn.Module:
    """Put ``teacher`` in eval mode and stop gradients into its weights.

    Eval mode matters twice: BatchNorm then normalises with the *running* statistics (the
    quantity the BN-statistics loss matches), and the synthetic batches never overwrite
    those statistics.

    Raises:
        ValueError: ``needs_batchnorm`` is set and the teacher has no BatchNorm layer.
    """
    if needs_batchnorm and not has_batchnorm(teacher):
        raise ValueError(
            "Expected `teacher` to contain BatchNorm layers (the BN-statistics loss inverts "
            f"their running statistics), got a {type(teacher).__name__} without any"
        )
    teacher.eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher


@contextlib.contextmanager
def frozen_weights(module: nn.Module) -> Iterator[None]:
    """Stop gradients into ``module``'s parameters for the duration of the block.

    Gradients still flow *through* the module to its inputs (what an adversarial term on
    synthetic images needs), but no weight gradient is computed or left behind.
    """
    trainable = [p for p in module.parameters() if p.requires_grad]
    for parameter in trainable:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in trainable:
            parameter.requires_grad_(True)


class ModelInput:
    """Maps images in [0, 1] to what the networks take: ``(x - mean) / std``.

    The statistics are checked once and kept on the images' device (:class:`Normalize`),
    so calls inside a step neither copy them to the device nor read anything back.

    Args:
        mean: Per-channel mean of the teacher's training data.
        std: Per-channel standard deviation of the teacher's training data.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self._normalize = Normalize(mean, std)
        self.mean = self._normalize.mean
        self.std = self._normalize.std

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self._normalize(images)


class TransferPool:
    """The uniformly sampled image pool of Fast-DFKD and DeepInversion.

    Grows by whole batches; with a ``capacity`` the oldest images are dropped first. Beside
    each image it keeps the teacher's class at admission (``labels``), for the pool's class
    histogram.

    Args:
        capacity: Maximum number of images (0: unbounded).
        generator: The random source of :meth:`sample`.
    """

    def __init__(self, capacity: int, generator: torch.Generator) -> None:
        self.capacity = capacity
        self.generator = generator
        self.images: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.images is None else int(self.images.shape[0])

    def add(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Append a batch ``(B, C, H, W)`` with the teacher's classes ``(B,)``."""
        if labels.shape != images.shape[:1]:
            raise ValueError(
                f"Expected `labels` of shape ({images.shape[0]},), one per image, "
                f"got {tuple(labels.shape)}"
            )
        batch, classes = images.detach(), labels.detach()
        if self.images is not None and self.labels is not None:
            batch = torch.cat([self.images, batch])
            classes = torch.cat([self.labels, classes])
        if self.capacity and batch.shape[0] > self.capacity:
            batch, classes = batch[-self.capacity :], classes[-self.capacity :]
        self.images, self.labels = batch, classes

    def sample(self, batch_size: int) -> torch.Tensor:
        """Draw ``batch_size`` images uniformly with replacement."""
        if self.images is None:
            raise RuntimeError("cannot sample from an empty transfer pool")
        index = torch.randint(
            0,
            self.images.shape[0],
            (batch_size,),
            generator=self.generator,
            device=self.generator.device,
        )
        return self.images[index.to(self.images.device)]

    def state_dict(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "images": self.images, "labels": self.labels}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`, on the generator's device (checkpoints load on CPU)."""
        device = self.generator.device
        images, labels = state["images"], state["labels"]
        self.capacity = int(state["capacity"])
        self.images = None if images is None else images.to(device)
        self.labels = None if labels is None else labels.to(device)

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

    Grows by whole batches, in the order they came; with a ``capacity`` the oldest images
    are dropped first. Beside each image it keeps the teacher's class at admission
    (``labels``), for the pool's class histogram.

    The storage is preallocated and doubles when full, so adding a batch copies that
    batch, not the whole pool: the cost of a run grows linearly with the images it makes
    (concatenating the pool each round copied it every time, quadratic in the rounds).

    Args:
        capacity: Maximum number of images (0: unbounded).
        generator: The random source of :meth:`sample`.

    Examples:
        >>> pool = TransferPool(0, torch.Generator().manual_seed(0))
        >>> pool.add(torch.zeros(3, 1, 2, 2), torch.tensor([0, 1, 1]))
        >>> pool.add(torch.ones(2, 1, 2, 2), torch.tensor([2, 2]))
        >>> len(pool), pool.labels.tolist(), pool.sample(4).shape
        (5, [0, 1, 1, 2, 2], torch.Size([4, 1, 2, 2]))
    """

    BLOCK = 1024
    """Images per block of :meth:`state_dict`."""

    def __init__(self, capacity: int, generator: torch.Generator) -> None:
        self.capacity = capacity
        self.generator = generator
        self._images: torch.Tensor | None = None
        self._labels: torch.Tensor | None = None
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def images(self) -> torch.Tensor | None:
        """``(N, C, H, W)`` the pool's images, oldest first (a view; ``None`` when empty)."""
        return None if self._images is None else self._images[: self._size]

    @property
    def labels(self) -> torch.Tensor | None:
        """``(N,)`` the teacher's class of each image at admission (``None`` when empty)."""
        return None if self._labels is None else self._labels[: self._size]

    def add(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Append a batch ``(B, C, H, W)`` with the teacher's classes ``(B,)``."""
        if labels.shape != images.shape[:1]:
            raise ValueError(
                f"Expected `labels` of shape ({images.shape[0]},), one per image, "
                f"got {tuple(labels.shape)}"
            )
        batch, classes = images.detach(), labels.detach()
        if self.capacity and batch.shape[0] >= self.capacity:
            batch, classes = batch[-self.capacity :], classes[-self.capacity :]
            self._size = 0
        count = batch.shape[0]
        if self.capacity and self._size + count > self.capacity:
            # Drop the oldest: shift the survivors to the front (one copy of at most
            # `capacity` images per batch, whatever the number of batches so far).
            keep = self.capacity - count
            assert self._images is not None
            assert self._labels is not None
            self._images[:keep] = self._images[self._size - keep : self._size].clone()
            self._labels[:keep] = self._labels[self._size - keep : self._size].clone()
            self._size = keep
        self._reserve(self._size + count, batch, classes)
        assert self._images is not None
        assert self._labels is not None
        self._images[self._size : self._size + count] = batch
        self._labels[self._size : self._size + count] = classes
        self._size += count

    def _reserve(self, needed: int, batch: torch.Tensor, classes: torch.Tensor) -> None:
        """Make room for ``needed`` images: allocate, or double (up to ``capacity``)."""
        allocated = 0 if self._images is None else self._images.shape[0]
        if needed <= allocated:
            return
        size = max(needed, 2 * allocated)
        if self.capacity:
            size = min(size, self.capacity)
        images = batch.new_empty((size, *batch.shape[1:]))
        labels = classes.new_empty((size,))
        if self._images is not None and self._labels is not None:
            images[: self._size] = self._images[: self._size]
            labels[: self._size] = self._labels[: self._size]
        self._images, self._labels = images, labels

    def sample(self, batch_size: int) -> torch.Tensor:
        """Draw ``batch_size`` images uniformly with replacement."""
        if self._images is None or self._size == 0:
            raise RuntimeError("cannot sample from an empty transfer pool")
        index = torch.randint(
            0,
            self._size,
            (batch_size,),
            generator=self.generator,
            device=self.generator.device,
        )
        return self._images[index.to(self._images.device)]

    def state_dict(self) -> dict[str, Any]:
        """The capacity, the live images as blocks of :attr:`BLOCK` images, and the labels.

        Copies without the spare room (``torch.save`` of a view writes its whole
        storage). In blocks, because a pool without capacity only appends: every block
        but the last is the same in the next checkpoint, and the run's checkpoints store
        each such block once (:mod:`ssdkd.engine.blobs`) instead of the whole pool every
        round.
        """
        images, labels = self.images, self.labels
        return {
            "capacity": self.capacity,
            "images": None
            if images is None
            else [block.clone() for block in images.split(self.BLOCK)],
            "labels": None if labels is None else labels.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`, on the generator's device (checkpoints load on CPU)."""
        device = self.generator.device
        blocks, labels = state["images"], state["labels"]
        images = None if blocks is None else torch.cat(list(blocks)).to(device)
        self.capacity = int(state["capacity"])
        self._images = images
        self._labels = None if labels is None else labels.to(device)
        self._size = 0 if images is None else int(images.shape[0])

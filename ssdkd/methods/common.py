"""Pieces every method shares: the frozen teacher, the transfer pool and the student step."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from ssdkd.generators import Augment, Normalize, random_mixup
from ssdkd.hooks import has_batchnorm
from ssdkd.losses import kd_kl_div, weighted_mean
from ssdkd.methods.config import MethodConfig
from ssdkd.methods.parallel import DataParallel
from ssdkd.methods.precision import Precision

__all__ = ["ModelInput", "StudentTrainer", "TransferPool", "freeze_teacher", "frozen_weights"]


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


class StudentTrainer:
    """One KD step of the student: per-sample KL · T², weighted mean, SGD + cosine.

    Args:
        teacher: The frozen teacher.
        student: The student, trained in place.
        config: Supplies the KD temperature, batch size, SGD settings and augmentation.
        total_steps: Length of the cosine schedule (all KD steps of the run).
        model_input: Normalisation applied to images before either network.
        precision: Autocast mode and guarded optimiser step.
        generator: Random source of the KD-batch augmentation.
        parallel: The ranks whose gradients and BN running statistics each step averages
            (default: one process).
    """

    def __init__(
        self,
        teacher: nn.Module,
        student: nn.Module,
        config: MethodConfig,
        *,
        total_steps: int,
        model_input: ModelInput,
        precision: Precision,
        generator: torch.Generator,
        parallel: DataParallel | None = None,
    ) -> None:
        self.teacher = teacher
        self.student = student
        self.parallel = DataParallel.single() if parallel is None else parallel
        self.temperature = config.temperature
        self.model_input = model_input
        self.precision = precision
        self.generator = generator
        self.augment = (
            Augment(crop_padding=config.crop_padding, flip=config.flip)
            if config.kd_augment
            else None
        )
        self.mixup = config.kd_mixup
        self.optimizer = torch.optim.SGD(
            student.parameters(),
            lr=config.student_lr,
            momentum=config.student_momentum,
            weight_decay=config.student_weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=max(1, total_steps)
        )

    def step(
        self, images: torch.Tensor, weights: torch.Tensor | None = None
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Train the student on one batch of images in [0, 1], without a host read.

        A step whose loss or gradients are not finite leaves the student bit-identical,
        BN running statistics included (an overflowing forward pass writes inf/NaN into
        them); the cosine schedule still advances, so a run's length is its step count.

        Args:
            images: ``(B, C, H, W)`` synthetic images.
            weights: Optional ``(B,)`` per-sample weights (importance weights).

        Returns:
            ``(metrics, kl, applied)``: the step's metrics as 0-dim tensors (``kd_loss``:
            the optimised loss; ``kl``: the unweighted mean of KL · T² over the batch;
            ``weight_mean``: the mean of ``weights``, and ``weight_ess``: their normalised
            effective sample size ``(Σw)² / (B·Σw²)`` in (0, 1] (1: equal weights; about
            1/B: one draw carries the batch), when given; ``skipped``: 1.0 for a
            skipped step), the detached per-sample KL(teacher ‖ student) at temperature
            T (without the T² factor; meaningless where ``applied`` is false), and the
            0-dim bool ``applied``.
        """
        if self.augment is not None:
            images = self.augment(images, generator=self.generator)
        if self.mixup:
            images = random_mixup(images, generator=self.generator)
        inputs = self.model_input(images)
        self.student.train()
        buffers = [b.clone() for b in self.student.buffers()]
        with self.precision.autocast():
            with torch.no_grad():
                teacher_logits = self.teacher(inputs)
            student_logits = self.student(inputs)
        per_sample = kd_kl_div(
            student_logits.float(),
            teacher_logits.float(),
            temperature=self.temperature,
            reduction="none",
        )
        loss = weighted_mean(per_sample, weights) if weights is not None else per_sample.mean()
        # Each rank's forward pass moved the running statistics by its own share: the
        # gradient all-reduce averages them too, so every rank keeps one student.
        running = [b for b in self.student.buffers() if b.is_floating_point()]
        applied = self.precision.step(
            loss, self.optimizer, parallel=self.parallel, average_also=running
        )
        with torch.no_grad():
            for buffer, saved in zip(self.student.buffers(), buffers, strict=True):
                buffer.copy_(torch.where(applied, buffer, saved))
        self.scheduler.step()
        # `kd_loss` is what was optimised (importance-weighted where weights are given);
        # `kl` is the plain per-sample mean, comparable across methods.
        metrics = {
            "kd_loss": loss.detach(),
            "kl": per_sample.detach().mean(),
            "skipped": (~applied).float(),
        }
        if weights is not None:
            metrics["weight_mean"] = weights.mean()
            metrics["weight_ess"] = weights.sum() ** 2 / (weights.numel() * (weights**2).sum())
        return metrics, per_sample.detach() / self.temperature**2, applied

    def state_dict(self) -> dict[str, Any]:
        return {
            "student": self.student.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.student.load_state_dict(state["student"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])

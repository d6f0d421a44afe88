"""The student step: one guarded optimiser step of a student on a batch, loss injected."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ssdkd.generators import Augment, random_mixup
from ssdkd.losses import kd_kl_div, weighted_mean
from ssdkd.methods.parallel import DataParallel
from ssdkd.methods.precision import FlatSnapshot, Precision

__all__ = ["StudentLoss", "StudentStep", "StudentStepResult"]

StudentLoss = Callable[[Tensor, Tensor], Tensor]
"""Maps (student logits ``(B, K)``, reference ``(B, K)`` teacher logits or ``(B,)`` labels)
to a per-sample loss ``(B,)``: e.g. :class:`~ssdkd.losses.KDLoss` (KL at T),
:class:`~ssdkd.losses.LogitL1Loss` (DFAD), or ``nn.CrossEntropyLoss(reduction="none")``
on labels (a student trained on real data)."""


class StudentStepResult(NamedTuple):
    """What one :meth:`StudentStep.step` returns; every tensor stays on the device."""

    metrics: dict[str, Tensor]
    """0-dim tensors: ``kd_loss`` (the optimised loss), ``kl`` (with ``kl_temperature``:
    the unweighted batch mean of KL(teacher ‖ student)·T²), ``skipped`` (1.0 for a skipped
    step); with ``weights``, ``weight_mean`` and ``weight_ess`` (their normalised effective
    sample size ``(Σw)² / (B·Σw²)`` in (0, 1]: 1 for equal weights, about 1/B when one
    draw carries the batch)."""
    per_sample: Tensor
    """``(B,)`` the detached per-sample loss (meaningless where ``applied`` is false)."""
    applied: Tensor
    """0-dim bool: whether the update was applied (its loss and gradients were finite)."""


class StudentStep:
    """One step of a student on a batch: forward, per-sample loss, weighted mean, guarded update.

    Built from explicit parts, so it serves a user's own loop as well as the reference
    methods. Each call augments the images (optional), maps them to the networks' input,
    runs the teacher (when given) without gradients and the student in train mode, computes
    ``loss(student_logits, reference)`` per sample, reduces it with the optional
    per-sample weights (:func:`~ssdkd.losses.weighted_mean`) and steps ``optimizer``
    through :meth:`Precision.step <ssdkd.methods.Precision.step>`. A step whose loss or
    gradients are not finite leaves the student bit-identical, BatchNorm running
    statistics included; the scheduler still advances, so a run's length is its step
    count. Nothing is read back to the host.

    Args:
        student: The network to train, in place.
        optimizer: The optimiser of the student's parameters.
        loss: A :data:`StudentLoss`.
        teacher: The frozen teacher whose logits are the reference; ``None`` trains on the
            ``targets`` given to :meth:`step` instead (e.g. real labels).
        model_input: Maps images to the networks' input (default: the images as they are),
            e.g. :class:`~ssdkd.generators.Normalize`.
        scheduler: Stepped after every step (also a skipped one).
        precision: Autocast mode and guarded update (default: fp32 on the student's
            device).
        augment: Applied to each batch before the networks (e.g. crop and flip).
        mixup: Blend each image with another of its batch after ``augment``
            (:func:`~ssdkd.generators.random_mixup`); the teacher labels the blend.
        generator: The random source of ``augment`` and ``mixup``.
        kl_temperature: Also record ``kl``, the unweighted KL(teacher ‖ student)·T² at this
            temperature, whatever ``loss`` optimises (needs ``teacher``).
        parallel: The ranks whose gradients and BN running statistics each step averages.

    Examples:
        >>> from ssdkd.losses import KDLoss
        >>> torch.manual_seed(0) and None
        >>> teacher, student = nn.Linear(4, 3).eval(), nn.Linear(4, 3)
        >>> step = StudentStep(student, torch.optim.SGD(student.parameters(), lr=0.1),
        ...                    KDLoss(temperature=4.0), teacher=teacher, kl_temperature=4.0)
        >>> result = step.step(torch.randn(8, 4))
        >>> sorted(result.metrics), result.per_sample.shape, bool(result.applied)
        (['kd_loss', 'kl', 'skipped'], torch.Size([8]), True)
    """

    def __init__(
        self,
        student: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss: StudentLoss,
        *,
        teacher: nn.Module | None = None,
        model_input: Callable[[Tensor], Tensor] | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        precision: Precision | None = None,
        augment: Augment | None = None,
        mixup: bool = False,
        generator: torch.Generator | None = None,
        kl_temperature: float | None = None,
        parallel: DataParallel | None = None,
    ) -> None:
        if not callable(loss):
            raise TypeError(f"Expected `loss` to be callable, got {type(loss).__name__}")
        if (augment is not None or mixup) and generator is None:
            raise ValueError("Expected a `generator` for the random `augment`/`mixup`, got None")
        if kl_temperature is not None and (teacher is None or not kl_temperature > 0):
            raise ValueError(
                "Expected `kl_temperature` > 0 with a `teacher`, got "
                f"{kl_temperature!r} and teacher={type(teacher).__name__}"
            )
        self.student = student
        self.optimizer = optimizer
        self.loss = loss
        self.teacher = teacher
        self.model_input = model_input
        self.scheduler = scheduler
        if precision is None:
            precision = Precision("fp32", next(student.parameters()).device)
        self.precision = precision
        self.augment = augment
        self.mixup = mixup
        self.generator = generator
        self.kl_temperature = kl_temperature
        self.parallel = DataParallel.single() if parallel is None else parallel
        # Scratch buffers of the BN-statistics snapshot, reused from step to step.
        self._workspace: dict[Any, Tensor] = {}

    def step(
        self,
        images: Tensor,
        weights: Tensor | None = None,
        targets: Tensor | None = None,
        teacher_logits: Tensor | None = None,
    ) -> StudentStepResult:
        """Train the student on one batch, without a host read.

        Args:
            images: ``(B, C, H, W)`` images (in [0, 1] for the reference methods).
            weights: Optional ``(B,)`` per-sample weights (e.g. importance weights).
            targets: ``(B,)`` labels, the reference when the step has no teacher.
            teacher_logits: ``(B, K)`` the teacher's logits on ``images``, computed
                before (SSD-KD stores them at admission): the step then runs no teacher
                forward pass. Only for a step without augmentation and mixup, whose
                batch is ``images`` as they are.

        Raises:
            ValueError: ``targets`` missing without a teacher, or given with one;
                ``teacher_logits`` without a teacher, with augmentation or mixup, or of
                another batch size.
        """
        if (self.teacher is None) != (targets is not None):
            raise ValueError(
                "Expected `targets` exactly when the step has no teacher, got "
                f"targets={'a tensor' if targets is not None else None} with "
                f"teacher={type(self.teacher).__name__ if self.teacher else None}"
            )
        if teacher_logits is not None:
            if self.teacher is None or self.augment is not None or self.mixup:
                raise ValueError(
                    "Expected `teacher_logits` only for a step with a teacher and without "
                    "augmentation or mixup (the stored logits are those of the images as "
                    "they are)"
                )
            if teacher_logits.shape[0] != images.shape[0]:
                raise ValueError(
                    f"Expected `teacher_logits` for the {images.shape[0]} images, got shape "
                    f"{tuple(teacher_logits.shape)}"
                )
        if self.augment is not None:
            images = self.augment(images, generator=self.generator)
        if self.mixup:
            images = random_mixup(images, generator=self.generator)
        inputs = self.model_input(images) if self.model_input is not None else images
        self.student.train()
        # An overflowing forward pass writes inf/NaN into the BN running statistics.
        saved_buffers = FlatSnapshot(list(self.student.buffers()), self._workspace)
        with self.precision.autocast():
            if self.teacher is not None and teacher_logits is None:
                with torch.no_grad():
                    teacher_logits = self.teacher(inputs)
            student_logits = self.student(inputs)
        reference = teacher_logits.float() if teacher_logits is not None else targets
        assert reference is not None
        per_sample = self.loss(student_logits.float(), reference)
        loss = weighted_mean(per_sample, weights) if weights is not None else per_sample.mean()
        # Each rank's forward pass moved the running statistics by its own share: the
        # gradient all-reduce averages them too, so every rank keeps one student.
        running = [b for b in self.student.buffers() if b.is_floating_point()]
        applied = self.precision.step(
            loss, self.optimizer, parallel=self.parallel, average_also=running
        )
        saved_buffers.restore_where_skipped_(applied)
        if self.scheduler is not None:
            self.scheduler.step()
        metrics = {"kd_loss": loss.detach(), "skipped": (~applied).float()}
        if self.kl_temperature is not None and teacher_logits is not None:
            metrics["kl"] = kd_kl_div(
                student_logits.detach().float(),
                teacher_logits.float(),
                temperature=self.kl_temperature,
            ).mean()
        if weights is not None:
            metrics["weight_mean"] = weights.mean()
            metrics["weight_ess"] = weights.sum() ** 2 / (weights.numel() * (weights**2).sum())
        return StudentStepResult(metrics, per_sample.detach(), applied)

    def state_dict(self) -> dict[str, Any]:
        """The student's weights and the optimiser's and scheduler's states."""
        state = {"student": self.student.state_dict(), "optimizer": self.optimizer.state_dict()}
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.student.load_state_dict(state["student"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])

"""The real-data bound: the student trained on real training images.

Not a data-free method: the reference a data-free method is measured against, run with a
data-free method's student budget (:func:`real_data_for`). Built from the same
:class:`~ssdkd.methods.StudentStep` as every method: with cross-entropy on the labels and
no teacher in the step (the bound), or with the teacher's KL on the real images
(``target="teacher"``: distillation with the data a data-free method lacks), on the whole
training set or on a fixed random subset of it (``train_images``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from ssdkd.methods.base import DistillationMethod, MethodSpec
from ssdkd.methods.config import (
    DistillationFields,
    MethodConfig,
    check_choice,
    check_non_negative,
)
from ssdkd.methods.ssd_kd import SSDKD_DIGITS, SSDKD_FASHION_MNIST, SSDKD_PAPER
from ssdkd.methods.streams import stream_seed
from ssdkd.methods.student import StudentLoss

__all__ = ["SPEC", "RealData", "RealDataConfig", "real_data_for"]


@dataclass(frozen=True)
class RealDataConfig(DistillationFields):
    """The student's budget on real data: ``rounds`` × ``kd_steps`` steps.

    ``temperature`` plays a part only with ``target="teacher"``.
    """

    warmup_rounds: int = 0
    """No warm-up: there is nothing to synthesise."""
    target: Literal["labels", "teacher"] = "labels"
    """What the student learns on the real images: their labels (cross-entropy, the bound)
    or the teacher's predictions (KL(teacher ‖ student)·T² at ``temperature``, the loss of
    the data-free methods)."""
    train_images: int = 0
    """How many training images the student learns from: 0 for all of them, N for a random
    subset of N, fixed by the run's seed and the same on every process."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(self, "target", ("labels", "teacher"))
        check_non_negative(self, "train_images")


def real_data_for(config: MethodConfig) -> RealDataConfig:
    """The real-data bound with ``config``'s student budget: as many steps (``rounds`` −
    ``warmup_rounds`` rounds of ``kd_steps``), the same batch, SGD settings, cosine
    schedule and batch augmentation.

    Examples:
        >>> from ssdkd.methods import SSDKD_FASHION_MNIST
        >>> bound = real_data_for(SSDKD_FASHION_MNIST)
        >>> bound.rounds * bound.kd_steps, bound.warmup_rounds
        (7800, 0)
    """
    shared = {f.name: getattr(config, f.name) for f in dataclasses.fields(DistillationFields)}
    shared["rounds"] = config.rounds - config.warmup_rounds
    shared["warmup_rounds"] = 0
    return RealDataConfig(**shared)


class RealData(DistillationMethod):
    """The student trained on real images: on their labels or on the teacher's predictions.

    Each step draws ``kd_batch_size`` training images uniformly with replacement (each
    rank its share, from its own stream) from the whole set or its ``train_images``
    subset, augments them as the KD batches are, and takes one guarded SGD step on the
    mean cross-entropy (``target="labels"``: the teacher is not used for training) or the
    mean KL to the teacher (``target="teacher"``). The teacher needs no BatchNorm layers.

    Args:
        teacher: Kept for the engine's records (fingerprint, snapshot); not trained on.
        student: The network to train.
        config: A :class:`RealDataConfig`.
        train_data: ``(images (N, C, H, W) in [0, 1], labels (N,))``: the real training
            set.
        **kwargs: See :class:`~ssdkd.methods.base.DistillationMethod`.

    Raises:
        TypeError: ``train_data`` is not a pair of tensors.
        ValueError: Shapes that do not match ``image_shape``, labels outside
            ``[0, num_classes)``, images outside [0, 1], no image, or fewer images than
            ``train_images``.
    """

    config_class = RealDataConfig
    config: RealDataConfig
    needs_batchnorm: ClassVar[bool] = False
    needs_train_data: ClassVar[bool] = True

    def __init__(
        self,
        teacher: nn.Module,
        student: nn.Module,
        config: RealDataConfig,
        *,
        train_data: tuple[Tensor, Tensor],
        **kwargs: Any,
    ) -> None:
        self.check_config(config)
        self.learns_from_teacher = config.target == "teacher"
        super().__init__(teacher, student, config, **kwargs)
        images, labels = _check_train_data(train_data, self.image_shape, self.num_classes)
        if config.train_images:
            if config.train_images > images.shape[0]:
                raise ValueError(
                    f"Expected `train_images` <= the {images.shape[0]} training images "
                    f"given, got {config.train_images}"
                )
            # From the synthesis role's seed (real data synthesises nothing), of rank 0:
            # every rank learns from the same subset.
            chooser = torch.Generator().manual_seed(stream_seed(self.seed, "synthesis"))
            chosen = torch.randperm(images.shape[0], generator=chooser)[: config.train_images]
            images, labels = images[chosen], labels[chosen]
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)

    def student_loss(self) -> StudentLoss:
        """Per sample: cross-entropy on the labels, or the KD loss with the teacher."""
        if self.learns_from_teacher:
            return super().student_loss()
        return nn.CrossEntropyLoss(reduction="none")

    def synthesize(self, round_index: int) -> dict[str, float]:
        del round_index
        return {"images_synthesized": 0.0}

    def distill_step(self) -> dict[str, Tensor | float]:
        index = torch.randint(
            0,
            self.labels.shape[0],
            (self.kd_batch_share,),
            generator=self.streams.transfer,
            device=self.device,
        )
        targets = None if self.learns_from_teacher else self.labels[index]
        result = self.trainer.step(self.images[index], targets=targets)
        self.kd_steps_done += 1
        return dict(result.metrics)

    def synthetic_images(self) -> Tensor:
        """The real training images (what the student learns from)."""
        return self.images


def _check_train_data(
    train_data: object, image_shape: tuple[int, int, int], num_classes: int
) -> tuple[Tensor, Tensor]:
    if (
        not isinstance(train_data, tuple)
        or len(train_data) != 2
        or not all(isinstance(part, Tensor) for part in train_data)
    ):
        raise TypeError(
            "Expected `train_data` to be a tuple (images, labels) of tensors, got "
            f"{type(train_data).__name__}"
        )
    images, labels = train_data
    if (
        images.dim() != 4
        or tuple(images.shape[1:]) != image_shape
        or labels.shape != images.shape[:1]
        or images.shape[0] == 0
    ):
        raise ValueError(
            f"Expected `train_data` as images (N, {', '.join(map(str, image_shape))}) and "
            f"labels (N,) with N >= 1, got shapes {tuple(images.shape)} and "
            f"{tuple(labels.shape)}"
        )
    if not images.is_floating_point() or float(images.min()) < 0 or float(images.max()) > 1:
        raise ValueError(
            f"Expected `train_data` images as floats in [0, 1], got {images.dtype} from "
            f"{float(images.min()):.3g} to {float(images.max()):.3g}"
        )
    if labels.is_floating_point() or int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ValueError(
            f"Expected `train_data` labels as integers in [0, {num_classes}), got "
            f"{labels.dtype} from {labels.min().item()} to {labels.max().item()}"
        )
    return images, labels.long()


SPEC = MethodSpec(
    name="real-data",
    method_class=RealData,
    presets={
        "paper": real_data_for(SSDKD_PAPER),
        "digits": real_data_for(SSDKD_DIGITS),
        "fashion-mnist": real_data_for(SSDKD_FASHION_MNIST),
    },
    summary="not data-free: the student on real images, their labels (the bound) or the teacher",
)
"""The real-data bound in the registry; each preset carries the student budget of SSD-KD's
preset of the same name."""

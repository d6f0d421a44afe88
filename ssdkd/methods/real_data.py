"""The real-data bound: the student trained with cross-entropy on real training images.

Not a data-free method: the reference a data-free method is measured against, run with a
data-free method's student budget (:func:`real_data_for`). Built from the same
:class:`~ssdkd.methods.StudentStep` as every method, with the loss swapped for
cross-entropy on labels and no teacher in the step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ssdkd.methods.base import DistillationMethod, MethodSpec
from ssdkd.methods.config import DistillationFields, MethodConfig
from ssdkd.methods.ssd_kd import SSDKD_DIGITS, SSDKD_FASHION_MNIST, SSDKD_PAPER
from ssdkd.methods.student import StudentLoss

__all__ = ["SPEC", "RealData", "RealDataConfig", "real_data_for"]


@dataclass(frozen=True)
class RealDataConfig(DistillationFields):
    """The student's budget on real data: ``rounds`` × ``kd_steps`` cross-entropy steps.

    ``temperature`` plays no part (no teacher in the loss).
    """

    warmup_rounds: int = 0
    """No warm-up: there is nothing to synthesise."""


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
    """The student trained with cross-entropy on real labelled images.

    Each step draws ``kd_batch_size`` training images uniformly with replacement (each
    rank its share, from its own stream), augments them as the KD batches are, and takes
    one guarded SGD step on the mean cross-entropy. The teacher is not used for training;
    it needs no BatchNorm layers.

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
            ``[0, num_classes)``, images outside [0, 1], or no image.
    """

    config_class = RealDataConfig
    config: RealDataConfig
    needs_batchnorm: ClassVar[bool] = False
    learns_from_teacher: ClassVar[bool] = False
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
        super().__init__(teacher, student, config, **kwargs)
        images, labels = _check_train_data(train_data, self.image_shape, self.num_classes)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)

    def student_loss(self) -> StudentLoss:
        """Cross-entropy of the student's logits on the labels, per sample."""
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
        result = self.trainer.step(self.images[index], targets=self.labels[index])
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
    summary="the bound, not data-free: cross-entropy on the real training images",
)
"""The real-data bound in the registry; each preset carries the student budget of SSD-KD's
preset of the same name."""

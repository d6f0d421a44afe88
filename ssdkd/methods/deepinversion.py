"""DeepInversion (Yin et al., CVPR 2020): its config, presets and method.

Optimise the pixels of each batch, then distil on the pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ssdkd.generators import Augment, PixelGenerator
from ssdkd.hooks import BNLayerStats, batchnorm_layers
from ssdkd.losses import bn_stat_loss, image_l2, js_competition, total_variation
from ssdkd.methods.base import MethodSpec, PoolMethod
from ssdkd.methods.budgets import FASHION_BUDGET
from ssdkd.methods.common import frozen_weights
from ssdkd.methods.config import DistillationFields, check_non_negative, check_positive
from ssdkd.methods.diagnostics import batch_diagnostics
from ssdkd.methods.inversion import invert
from ssdkd.methods.precision import NonFiniteLossError, Precision

__all__ = [
    "DEEPINVERSION_DIGITS",
    "DEEPINVERSION_FASHION_MNIST",
    "DEEPINVERSION_PAPER",
    "SPEC",
    "DeepInversion",
    "DeepInversionConfig",
]


@dataclass(frozen=True)
class DeepInversionConfig(DistillationFields):
    """DeepInversion (Yin et al., CVPR 2020): optimise the pixels of each batch directly.

    Each round optimises one fresh batch for ``iterations`` Adam steps, adds it to the
    transfer pool and then distils on the pool. Defaults are the CIFAR recipe (2,000
    iterations, BN weight 10, batch 256) with DeepInversion's KD temperature of 3.
    """

    rounds: int = 40
    """[ours] Batches synthesised (the published recipe sets the transfer-set size, not a
    round count; 40 batches of 256 ≈ 10k images)."""
    warmup_rounds: int = 0
    """DeepInversion needs no warm-up: the student is not part of plain DeepInversion."""
    temperature: float = 3.0
    """KD temperature of DeepInversion's CIFAR distillation."""
    synthesis_batch_size: int = 256
    """Images per synthesised batch."""
    iterations: int = 2000
    """Adam steps per batch."""
    lr: float = 0.1
    """Adam learning rate of the pixels."""
    bn_weight: float = 10.0
    """Weight of the BN-statistics loss."""
    first_bn_multiplier: float = 1.0
    """Extra weight of the first BN layer (10 in the ImageNet recipe)."""
    oh_weight: float = 1.0
    """Weight of the teacher's cross-entropy on the targets."""
    tv_l1_weight: float = 0.0
    """Weight of the L1 total-variation prior."""
    tv_l2_weight: float = 0.5
    """[ours] Weight of the L2 total-variation prior. ssdkd's TV is a per-pixel mean
    (independent of image size), so the published weights, set for a sum over a 224×224
    image, do not transfer; 0.5 keeps the prior about a tenth of the task loss on noise."""
    l2_weight: float = 0.0
    """Weight of the image L2-norm prior (off: images are already bounded to [0, 1])."""
    competition_weight: float = 0.0
    """Weight of the Adaptive-DeepInversion competition term 1 − JS (0: plain DI)."""
    roll: int = 2
    """Maximum random roll (jitter) in pixels during inversion."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "synthesis_batch_size", "iterations", "lr")
        check_non_negative(
            self,
            "bn_weight",
            "first_bn_multiplier",
            "oh_weight",
            "tv_l1_weight",
            "tv_l2_weight",
            "l2_weight",
            "competition_weight",
            "roll",
        )


DEEPINVERSION_PAPER = DeepInversionConfig()
"""DeepInversion's CIFAR recipe."""
DEEPINVERSION_DIGITS = DeepInversionConfig(
    rounds=10,
    warmup_rounds=0,
    kd_steps=120,
    kd_batch_size=128,
    temperature=4.0,
    student_lr=0.05,
    crop_padding=1,
    flip=False,
    synthesis_batch_size=128,
    iterations=200,
    roll=1,
)
"""DeepInversion scaled to digits: 10 batches of 128 images, 200 pixel steps each."""
DEEPINVERSION_FASHION_MNIST = DeepInversionConfig(
    **{**FASHION_BUDGET, "warmup_rounds": 0},
    rounds=30,
    kd_steps=100,
    synthesis_batch_size=128,
    iterations=200,
)
"""DeepInversion at 28×28: 30 batches of 128 images, 200 pixel steps each, 100 KD steps."""


class DeepInversion(PoolMethod):
    """DeepInversion (Yin et al., CVPR 2020), with the optional ADI competition term.

    Each round optimises a fresh :class:`~ssdkd.generators.PixelGenerator` batch for
    ``iterations`` Adam steps (betas 0.5, 0.9) on
    ``bn_weight·L_BN + oh_weight·CE + tv_l1·TV₁ + tv_l2·TV₂ + l2·‖x‖₂ + competition·(1 − JS)``
    under random roll jitter and flips, then appends the batch to the transfer pool; KD
    steps draw uniformly from the pool. With several processes each rank optimises its own
    ``synthesis_batch_size / N`` images (their BN-statistics loss is that of the rank's
    share) into its own pool.

    See :class:`~ssdkd.methods.base.DistillationMethod` for the arguments.

    Examples:
        >>> from dataclasses import replace
        >>> from ssdkd.methods.deepinversion import DEEPINVERSION_DIGITS
        >>> from ssdkd.models import create_model
        >>> teacher = create_model("tiny_cnn", num_classes=10, in_channels=1, image_size=8)
        >>> student = create_model("tiny_cnn", num_classes=10, in_channels=1, image_size=8)
        >>> config = replace(DEEPINVERSION_DIGITS, iterations=3, synthesis_batch_size=16)
        >>> method = DeepInversion(teacher, student, config, num_classes=10,
        ...                        image_shape=(1, 8, 8), normalization=((0.3,), (0.4,)))
        >>> method.synthesize(0)["images_synthesized"]
        16.0
    """

    config_class = DeepInversionConfig
    config: DeepInversionConfig

    def __init__(
        self, teacher: nn.Module, student: nn.Module, config: DeepInversionConfig, **kwargs: Any
    ) -> None:
        super().__init__(teacher, student, config, **kwargs)
        self.augment = Augment(crop_padding=0, flip=config.flip, roll=config.roll)
        layers = len(batchnorm_layers(self.teacher))
        self.layer_weights = [config.first_bn_multiplier] + [1.0] * (layers - 1)
        # The pixels' own instance: their loss needs its own fp16 gradient scale.
        self.pixel_precision = Precision(self.precision.mode, self.device)
        self.batch_share = self.parallel.share(config.synthesis_batch_size, "synthesis_batch_size")

    def synthesize(self, round_index: int) -> dict[str, float]:
        del round_index
        cfg = self.config
        channels, size, _ = self.image_shape
        pixels = PixelGenerator(
            self.batch_share, channels, size, generator=self.streams.synthesis
        ).to(self.device)
        targets = torch.randint(
            0,
            self.num_classes,
            (self.batch_share,),
            generator=self.streams.synthesis,
            device=self.device,
        )
        with frozen_weights(self.student):
            last, skipped = self._optimize(pixels, targets)
        images = pixels().detach()
        with torch.no_grad(), self.precision.autocast():
            final_logits = self.teacher(self.model_input(images)).float()
        # Every rank raises below or none does: the rank that skipped most decides.
        skipped = self.parallel.max(skipped)
        synth_loss, synth_bn, skipped_steps = torch.cat([last, skipped.float()[None]]).tolist()
        if skipped_steps == cfg.iterations:
            raise NonFiniteLossError(
                f"all {cfg.iterations} pixel steps of this batch had a non-finite loss or "
                "gradient; the batch was not added to the pool"
            )
        return {
            "synth_loss": synth_loss,
            "synth_bn": synth_bn,
            "synth_skipped_steps": skipped_steps,
            **batch_diagnostics(final_logits, targets),
            **self._add_to_pool(images, final_logits),
        }

    def _optimize(
        self, pixels: PixelGenerator, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``iterations`` pixel steps (:func:`~ssdkd.methods.inversion.invert`),
        without a host read.

        Returns ``(loss, bn loss)`` of the last applied step and the number of skipped
        steps (a non-finite loss or gradient leaves the pixels unchanged).
        """
        cfg = self.config

        def objective(
            images: torch.Tensor,
            inputs: torch.Tensor,
            teacher_logits: torch.Tensor,
            stats: list[BNLayerStats],
        ) -> tuple[torch.Tensor, torch.Tensor]:
            loss_bn = bn_stat_loss(stats, layer_weights=self.layer_weights)
            loss = cfg.bn_weight * loss_bn + cfg.oh_weight * F.cross_entropy(
                teacher_logits, targets
            )
            if cfg.tv_l1_weight:
                loss = loss + cfg.tv_l1_weight * total_variation(images, p=1, reduction="mean")
            if cfg.tv_l2_weight:
                loss = loss + cfg.tv_l2_weight * total_variation(images, p=2, reduction="mean")
            if cfg.l2_weight:
                loss = loss + cfg.l2_weight * image_l2(images, reduction="mean")
            if cfg.competition_weight:
                with self.precision.autocast():
                    student_logits = self.student(inputs).float()
                loss = loss + cfg.competition_weight * js_competition(
                    student_logits, teacher_logits, reduction="mean"
                )
            return loss, torch.stack([loss, loss_bn])

        result = invert(
            cfg.iterations,
            pixels,
            objective,
            torch.optim.Adam(pixels.parameters(), lr=cfg.lr, betas=(0.5, 0.9)),
            teacher=self.teacher,
            model_input=self.model_input,
            augment=self.augment,
            generator=self.streams.synthesis,
            precision=self.precision,
            step_precision=self.pixel_precision,
            student=self.student,
        )
        return result.last_parts, result.skipped

    def _extra_state(self) -> dict[str, Any]:
        return {**super()._extra_state(), "pixel_precision": self.pixel_precision.state_dict()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        super()._load_extra_state(state)
        self.pixel_precision.load_state_dict(state.get("pixel_precision", {}))


SPEC = MethodSpec(
    name="deepinversion",
    method_class=DeepInversion,
    presets={
        "paper": DEEPINVERSION_PAPER,
        "digits": DEEPINVERSION_DIGITS,
        "fashion-mnist": DEEPINVERSION_FASHION_MNIST,
    },
    summary="DeepInversion (CVPR 2020): optimised pixels into a pool, uniform KD",
)
"""DeepInversion in the registry."""

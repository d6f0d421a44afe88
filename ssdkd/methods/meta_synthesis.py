"""The meta-learned generator round shared by Fast-DFKD and SSD-KD."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ssdkd.generators import Augment, DCGANGenerator, fomaml_accumulate, reptile_gradient
from ssdkd.hooks import BNStatsHook
from ssdkd.losses import BNStatMomentum, adversarial_kl, weighted_mean
from ssdkd.methods.base import DistillationMethod
from ssdkd.methods.common import ModelInput
from ssdkd.methods.config import FastDFKDConfig
from ssdkd.methods.diagnostics import batch_diagnostics
from ssdkd.methods.precision import NonFiniteLossError, Precision

__all__ = ["MetaGeneratorSynthesis", "SynthesisOutput", "TaskWeights"]

TaskWeights = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""Maps (teacher logits ``(B, K)``, targets ``(B,)``) to per-sample task-loss weights."""


@dataclass(frozen=True)
class SynthesisOutput:
    """What one generator round produced."""

    images: torch.Tensor
    """``(B, C, H, W)`` the lowest-loss batch of the round, detached, in [0, 1]."""
    targets: torch.Tensor
    """``(B,)`` the target labels the batch was synthesised for."""
    teacher_logits: torch.Tensor
    """``(B, K)`` the teacher's logits on the (un-augmented) images."""
    metrics: dict[str, float]
    """Loss parts of the best inner step (``synth_loss``, ``synth_bn``, ``synth_task``,
    ``synth_adv``) and the batch's :func:`~ssdkd.methods.diagnostics.batch_diagnostics`."""


class MetaGeneratorSynthesis:
    """Fast-DFKD's synthesis round: a few inner steps of a fast generator copy, one meta step.

    Each round (1) clones the meta generator, draws fresh latents z and uniform targets y;
    (2) runs ``g_steps`` Adam steps on {fast generator, z} of
    ``bn_weight·L_BN + oh_weight·mean(w·CE) + adv_weight·L_adv`` where w are optional
    per-sample task weights (SSD-KD's φ) and L_adv only counts after warm-up; (3) takes
    one meta step (first-order MAML: the fast copy's gradients summed over the inner steps;
    or Reptile: θ − θ'); (4) updates the BN-statistics EMA. The lowest-loss batch is kept.

    Args:
        teacher: The frozen teacher (eval mode).
        student: The student, used by the adversarial term.
        config: Generator, loss-weight and learning-rate settings.
        num_classes: Number of teacher classes.
        image_shape: ``(C, H, W)`` with ``H == W``.
        model_input: Normalisation in front of both networks.
        precision: Autocast mode of the forward passes.
        generator: The random source (latents, targets, augmentation).
    """

    def __init__(
        self,
        teacher: nn.Module,
        student: nn.Module,
        config: FastDFKDConfig,
        *,
        num_classes: int,
        image_shape: tuple[int, int, int],
        model_input: ModelInput,
        precision: Precision,
        generator: torch.Generator,
    ) -> None:
        channels, height, width = image_shape
        if height != width:
            raise ValueError(f"Expected square `image_shape`, got {image_shape}")
        device = generator.device
        self.teacher = teacher
        self.student = student
        self.config = config
        self.num_classes = num_classes
        self.model_input = model_input
        self.precision = precision
        self.generator = generator
        self.meta = DCGANGenerator(
            latent_dim=config.latent_dim,
            image_size=height,
            channels=channels,
            width=config.generator_width,
            num_classes=num_classes if config.conditional_generator else 0,
        ).to(device)
        self.meta_optimizer = torch.optim.Adam(
            self.meta.parameters(), lr=config.lr_g * config.g_steps, betas=(0.5, 0.999)
        )
        self.bn_loss = BNStatMomentum(momentum=config.bn_momentum)
        self.augment = Augment(crop_padding=config.crop_padding, flip=config.flip)

    @classmethod
    def for_method(
        cls, method: DistillationMethod, config: FastDFKDConfig
    ) -> MetaGeneratorSynthesis:
        """The synthesis of ``method``: its models, input mapping, precision and generator."""
        return cls(
            method.teacher,
            method.student,
            config,
            num_classes=method.num_classes,
            image_shape=method.image_shape,
            model_input=method.model_input,
            precision=method.precision,
            generator=method.generator,
        )

    def run(self, *, adversarial: bool, task_weights: TaskWeights | None = None) -> SynthesisOutput:
        """Synthesise one batch and take one meta step."""
        cfg = self.config
        device = self.generator.device
        fast = copy.deepcopy(self.meta)
        fast.train()
        z = torch.randn(
            cfg.synthesis_batch_size, cfg.latent_dim, generator=self.generator, device=device
        ).requires_grad_()
        targets = torch.randint(
            0,
            self.num_classes,
            (cfg.synthesis_batch_size,),
            generator=self.generator,
            device=device,
        )
        inner = torch.optim.Adam(
            [{"params": fast.parameters(), "lr": cfg.lr_g}, {"params": [z], "lr": cfg.lr_z}],
            betas=(0.5, 0.999),
        )
        self.meta_optimizer.zero_grad(set_to_none=True)
        student_was_training = self.student.training
        self.student.eval()
        best_loss = torch.tensor(float("inf"), device=device)
        best_images = torch.zeros(0, device=device)
        best_parts = torch.zeros(4, device=device)
        last_stats = None
        for _ in range(cfg.g_steps):
            images = fast(z, targets) if cfg.conditional_generator else fast(z)
            inputs = self.model_input(self.augment(images, generator=self.generator))
            with BNStatsHook(self.teacher) as recorder:
                with self.precision.autocast():
                    teacher_logits = self.teacher(inputs).float()
                stats = recorder.stats
            loss_bn = self.bn_loss(stats)
            ce = F.cross_entropy(teacher_logits, targets, reduction="none")
            if task_weights is None:
                loss_task = ce.mean()
            else:
                loss_task = weighted_mean(ce, task_weights(teacher_logits.detach(), targets))
            loss_adv = torch.zeros((), device=device)
            if adversarial and cfg.adv_weight > 0:
                with self.precision.autocast():
                    student_logits = self.student(inputs).float()
                loss_adv = adversarial_kl(student_logits, teacher_logits, reduction="mean")
            loss = cfg.bn_weight * loss_bn + cfg.oh_weight * loss_task + cfg.adv_weight * loss_adv
            inner.zero_grad(set_to_none=True)
            if not bool(torch.isfinite(loss.detach())):
                continue
            loss.backward()
            if cfg.meta_algorithm == "fomaml":
                fomaml_accumulate(self.meta, fast)
            inner.step()
            last_stats = stats
            # Keep the lowest-loss batch without a host round-trip.
            better = loss.detach() < best_loss
            best_images = (
                images.detach()
                if best_images.numel() == 0
                else torch.where(better, images.detach(), best_images)
            )
            parts = torch.stack([loss, loss_bn, loss_task, loss_adv]).detach()
            best_parts = torch.where(better, parts, best_parts)
            best_loss = torch.minimum(best_loss, loss.detach())
        self.student.train(student_was_training)
        if last_stats is None:
            raise NonFiniteLossError(
                f"all {cfg.g_steps} inner generator steps of this round had a non-finite "
                "loss; the generator was not updated"
            )
        if cfg.meta_algorithm == "reptile":
            reptile_gradient(self.meta, fast)
        self.meta_optimizer.step()
        self.bn_loss.update(last_stats)
        with torch.no_grad(), self.precision.autocast():
            teacher_logits = self.teacher(self.model_input(best_images)).float()
        names = ("loss", "bn", "task", "adv")
        metrics = {f"synth_{n}": float(v) for n, v in zip(names, best_parts.tolist(), strict=True)}
        metrics.update(batch_diagnostics(teacher_logits, targets))
        return SynthesisOutput(
            images=best_images, targets=targets, teacher_logits=teacher_logits, metrics=metrics
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "meta": self.meta.state_dict(),
            "meta_optimizer": self.meta_optimizer.state_dict(),
            "bn_loss": self.bn_loss.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.meta.load_state_dict(state["meta"])
        self.meta_optimizer.load_state_dict(state["meta_optimizer"])
        self.bn_loss.load_state_dict(state["bn_loss"])

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
from ssdkd.hooks import BNLayerStats
from ssdkd.losses import BNStatMomentum, adversarial_kl, weighted_mean
from ssdkd.methods.base import DistillationMethod
from ssdkd.methods.common import ModelInput, frozen_weights
from ssdkd.methods.config import MetaGeneratorFields
from ssdkd.methods.diagnostics import batch_diagnostics
from ssdkd.methods.inversion import InversionResult, invert
from ssdkd.methods.parallel import DataParallel
from ssdkd.methods.precision import NonFiniteLossError, Precision

__all__ = ["MAX_FAILED_FP16_ROUNDS", "MetaGeneratorSynthesis", "SynthesisOutput", "TaskWeights"]

MAX_FAILED_FP16_ROUNDS = 10
"""In fp16, the gradient scaler starts at 2¹⁶ and halves on every overflowing step, so the
first rounds may skip every inner step while it finds its scale; this many consecutive
such rounds end the run (in fp32 and bf16 the first one does)."""

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

    With several processes (``parallel``) each rank runs the inner steps on its own
    ``synthesis_batch_size / N`` latents and targets with its own fast copy; the meta
    gradients are averaged before the meta step, the BN-statistics EMA is updated with the
    statistics of the global batch, and a round is skipped on every rank or on none, so
    the meta generator and the EMA stay identical on every rank.

    Args:
        teacher: The frozen teacher (eval mode).
        student: The student, used by the adversarial term.
        config: Generator, loss-weight and learning-rate settings.
        num_classes: Number of teacher classes.
        image_shape: ``(C, H, W)`` with ``H == W``.
        model_input: Normalisation in front of both networks.
        precision: Mode of the forward passes (the synthesis keeps its own fp16 scaler).
        generator: The random source (latents, targets, augmentation).
        parallel: The ranks the synthesis is split across (default: one process).
        init_seed: The seed of the meta generator's initial weights (torch's global
            random state is left as it was).
    """

    def __init__(
        self,
        teacher: nn.Module,
        student: nn.Module,
        config: MetaGeneratorFields,
        *,
        num_classes: int,
        image_shape: tuple[int, int, int],
        model_input: ModelInput,
        precision: Precision,
        generator: torch.Generator,
        parallel: DataParallel | None = None,
        init_seed: int = 0,
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
        # Its own instance: the generator's loss needs its own fp16 gradient scale.
        self.precision = Precision(precision.mode, generator.device)
        self.generator = generator
        self.parallel = DataParallel.single() if parallel is None else parallel
        self.batch_share = self.parallel.share(config.synthesis_batch_size, "synthesis_batch_size")
        # nn.Module initialisers read torch's global generator only: seed a fork of it.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            self.meta = DCGANGenerator(
                latent_dim=config.latent_dim,
                image_size=height,
                channels=channels,
                width=config.generator_width,
                num_classes=num_classes if config.conditional_generator else 0,
            ).to(device)
        self.parallel.broadcast_(self.meta)
        self.meta_optimizer = torch.optim.Adam(
            self.meta.parameters(), lr=config.lr_g * config.g_steps, betas=(0.5, 0.999)
        )
        self.bn_loss = BNStatMomentum(momentum=config.bn_momentum)
        # Consecutive rounds whose inner steps were all skipped (tolerated in fp16 only).
        self.failed_rounds = 0
        self.augment = Augment(crop_padding=config.crop_padding, flip=config.flip)

    @classmethod
    def for_method(
        cls, method: DistillationMethod, config: MetaGeneratorFields
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
            generator=method.streams.synthesis,
            parallel=method.parallel,
            init_seed=method.seed,
        )

    def run(self, *, adversarial: bool, task_weights: TaskWeights | None = None) -> SynthesisOutput:
        """Synthesise one batch and take one meta step (one host read, at the end)."""
        cfg = self.config
        fast = copy.deepcopy(self.meta)
        fast.train()
        z = torch.randn(
            self.batch_share,
            cfg.latent_dim,
            generator=self.generator,
            device=self.generator.device,
        ).requires_grad_()
        targets = torch.randint(
            0,
            self.num_classes,
            (self.batch_share,),
            generator=self.generator,
            device=self.generator.device,
        )
        self.meta_optimizer.zero_grad(set_to_none=True)
        with frozen_weights(self.student):
            result = self._inner_steps(fast, z, targets, adversarial, task_weights)
        best_images, best_parts = result.best_images, result.best_parts
        names = ("loss", "bn", "task", "adv")
        # The rank that skipped most decides: every rank takes the meta step or none does.
        skipped = self.parallel.max(result.skipped)
        read = torch.cat([best_parts, skipped.float()[None]]).tolist()
        metrics = {f"synth_{n}": float(v) for n, v in zip(names, read[:4], strict=True)}
        metrics["synth_skipped_steps"] = read[-1]
        if read[-1] < cfg.g_steps:
            self.failed_rounds = 0
            if cfg.meta_algorithm == "reptile":
                reptile_gradient(self.meta, fast)
            self.parallel.average_parameter_gradients_(self.meta.parameters())
            self.meta_optimizer.step()
            self.bn_loss.update(_global_stats(self.parallel, result.last_stats))
        else:
            self.failed_rounds += 1
            if self.precision.scaler is None or self.failed_rounds >= MAX_FAILED_FP16_ROUNDS:
                raise NonFiniteLossError(
                    f"all {cfg.g_steps} inner generator steps of {self.failed_rounds} "
                    "consecutive round(s) had a non-finite loss or gradient; the generator "
                    "was not updated"
                )
            # fp16 while the gradient scaler is still finding its scale: no update this
            # round, and the batch is the unchanged generator's.
            best_images = result.last_images
        with torch.no_grad(), self.precision.autocast():
            teacher_logits = self.teacher(self.model_input(best_images)).float()
        metrics.update(batch_diagnostics(teacher_logits, targets))
        return SynthesisOutput(
            images=best_images, targets=targets, teacher_logits=teacher_logits, metrics=metrics
        )

    def _inner_steps(
        self,
        fast: DCGANGenerator,
        z: torch.Tensor,
        targets: torch.Tensor,
        adversarial: bool,
        task_weights: TaskWeights | None,
    ) -> InversionResult:
        """The ``g_steps`` inner steps (:func:`~ssdkd.methods.inversion.invert`), without a
        host read. A skipped step changes neither the fast copy nor z, adds nothing to the
        meta gradient and is never the kept batch."""
        cfg = self.config
        device = self.generator.device
        inner = torch.optim.Adam(
            [{"params": fast.parameters(), "lr": cfg.lr_g}, {"params": [z], "lr": cfg.lr_z}],
            betas=(0.5, 0.999),
        )

        def objective(
            images: torch.Tensor,
            inputs: torch.Tensor,
            teacher_logits: torch.Tensor,
            stats: list[BNLayerStats],
        ) -> tuple[torch.Tensor, torch.Tensor]:
            del images
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
            return loss, torch.stack([loss, loss_bn, loss_task, loss_adv])

        result = invert(
            cfg.g_steps,
            lambda: fast(z, targets) if cfg.conditional_generator else fast(z),
            objective,
            inner,
            teacher=self.teacher,
            model_input=self.model_input,
            augment=self.augment,
            generator=self.generator,
            precision=self.precision,
            step_precision=self.precision,
            before_update=(
                (lambda: fomaml_accumulate(self.meta, fast))
                if cfg.meta_algorithm == "fomaml"
                else None
            ),
            track_stats=True,
            student=self.student,
        )
        return result

    def state_dict(self) -> dict[str, Any]:
        return {
            "meta": self.meta.state_dict(),
            "meta_optimizer": self.meta_optimizer.state_dict(),
            "bn_loss": self.bn_loss.state_dict(),
            "precision": self.precision.state_dict(),
            "failed_rounds": self.failed_rounds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.meta.load_state_dict(state["meta"])
        self.meta_optimizer.load_state_dict(state["meta_optimizer"])
        self.bn_loss.load_state_dict(state["bn_loss"])
        self.bn_loss.to(self.generator.device)
        self.precision.load_state_dict(state.get("precision", {}))
        self.failed_rounds = int(state.get("failed_rounds", 0))


def _global_stats(parallel: DataParallel, stats: list[BNLayerStats]) -> list[BNLayerStats]:
    """The statistics of the global batch from each rank's equal share (one collective).

    The global mean is the mean of the ranks' means; the global biased variance is the mean
    of ``var + mean²`` minus the squared global mean.
    """
    if not parallel.active:
        return stats
    # In float64: E[x²] − E[x]² cancels badly in float32 when |mean| ≫ std.
    parts = [
        torch.cat([s.mean.detach(), s.var.detach() + s.mean.detach() ** 2]).double() for s in stats
    ]
    parallel.average_(parts)
    merged = []
    for s, part in zip(stats, parts, strict=True):
        mean, square = part.chunk(2)
        var = (square - mean**2).clamp_min(0.0)
        merged.append(
            BNLayerStats(
                s.name, mean.to(s.mean.dtype), var.to(s.var.dtype), s.running_mean, s.running_var
            )
        )
    return merged

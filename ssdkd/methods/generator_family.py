"""The common frame of the generator family (DAFL, DFAD, DFQ, ZSKT): one generator trained
against the teacher (and the student), the student learning from its live images.

By default no transfer set is kept: each student step draws a fresh batch from the
generator (or learns from the generator's last batch). With ``transfer="buffer"`` every
generator batch enters SSD-KD's transfer set instead (:class:`~ssdkd.methods.PrioritySet`)
and the student draws from it by priority; with ``phi_weight`` the one-hot term is
weighted per image by SSD-KD's φ. A
round (an "epoch") is ``iterations`` alternations of ``g_steps`` generator steps and
``kd_steps`` student steps (:class:`~ssdkd.methods.RoundPlan`), so evaluation, logs and
checkpoints come once per round. One generator loss with optional terms covers the
family:

    L_G = bn·L_BN + oh·CE(T(x), argmax T(x)) − adv·D(S(x), T(x))
          + balance·Σ_c p̄_c log p̄_c + act·(−mean |f_T(x)|)

with x = G(z) in [0, 1] normalised like the teacher's inputs, p̄ the batch mean of the
teacher's softmax, f_T the input of the teacher's last linear layer, and D the mean
KL(p_T ‖ p_S) at temperature 1 (``adversarial="kl"``) or the mean L1 distance of the
logits (``"l1"``, DFAD). Each method is a config class with its published weights and
a few lines choosing its student loss.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ssdkd.generators import DCGANGenerator
from ssdkd.hooks import BNStatsHook
from ssdkd.losses import (
    DiversityDifficultyModulator,
    activation_loss,
    bn_stat_loss,
    information_entropy,
    kd_kl_div,
    logit_l1,
)
from ssdkd.methods.base import DistillationMethod, RoundPlan
from ssdkd.methods.common import frozen_weights
from ssdkd.methods.config import (
    DistillationFields,
    check_choice,
    check_non_negative,
    check_positive,
)
from ssdkd.methods.diagnostics import counts_entropy
from ssdkd.methods.precision import Precision
from ssdkd.methods.priority_set import PrioritySet, PrioritySetFields

__all__ = ["GeneratorFamily", "GeneratorFamilyFields"]


@dataclass(frozen=True)
class GeneratorFamilyFields(DistillationFields, PrioritySetFields):
    """The fields of the generator family's common frame, shared by the configs of
    :class:`~ssdkd.methods.DAFLConfig`, :class:`~ssdkd.methods.DFADConfig`,
    :class:`~ssdkd.methods.DFQConfig` and :class:`~ssdkd.methods.ZSKTConfig`.

    A group of fields, not a method's config. ``rounds`` counts epochs, ``kd_steps`` the
    student steps after each generator update, and ``warmup_rounds`` the epochs at the
    start in which only the generator learns. The fields of
    :class:`~ssdkd.methods.PrioritySetFields` apply with ``transfer="buffer"`` only.
    """

    rounds: int = 200
    warmup_rounds: int = 0
    kd_steps: int = 5
    kd_batch_size: int = 256
    temperature: float = 1.0
    student_lr: float = 0.1
    student_weight_decay: float = 5e-4
    kd_augment: bool = False
    iterations: int = 50
    """Alternations (generator steps, then ``kd_steps`` student steps) per round."""
    g_steps: int = 1
    """Generator updates per alternation, each on fresh latents."""
    synthesis_batch_size: int = 256
    """Images per generator update."""
    latent_dim: int = 100
    """Dimension of the generator's latent z."""
    generator_width: int = 64
    """DCGAN width: the generator's convolutions have 2·width and width channels."""
    lr_g: float = 1e-3
    """Adam learning rate of the generator (betas 0.5, 0.999)."""
    lr_g_schedule: Literal["constant", "cosine"] = "constant"
    """The generator's learning rate over the run: constant (DAFL, DFAD, DFQ), or annealed
    to 0 with a cosine over its ``rounds × iterations × g_steps`` updates (ZSKT's paper,
    which anneals the student's and the generator's together)."""
    bn_weight: float = 0.0
    """Weight of the BN-statistics loss (needs BatchNorm layers in the teacher)."""
    oh_weight: float = 0.0
    """Weight of the teacher's cross-entropy on its own argmax (one-hot loss)."""
    adv_weight: float = 0.0
    """Weight of the adversarial discrepancy D(S(x), T(x)), which the generator maximises."""
    adversarial: Literal["kl", "l1"] = "kl"
    """D: mean KL(p_T ‖ p_S) at temperature 1, or the mean L1 distance of the logits."""
    balance_weight: float = 0.0
    """Weight of Σ_c p̄_c log p̄_c (information entropy; minimal for a class-balanced batch)."""
    act_weight: float = 0.0
    """Weight of −mean |f_T(x)|, the teacher's penultimate activations."""
    student_optimizer: Literal["sgd", "adam"] = "sgd"
    """The student's optimiser (SGD with ``student_momentum``, or Adam), cosine-annealed."""
    student_images: Literal["fresh", "same"] = "fresh"
    """Each student step on a fresh generator batch, or every step of an alternation on
    the batch of its last generator update (DAFL's original: the two stepped together);
    with ``transfer="live"`` only."""
    transfer: Literal["live", "buffer"] = "live"
    """What the student learns from: the generator's images (``"live"``, the papers'), or
    [ours] SSD-KD's transfer set (``"buffer"``): every generator batch, with the teacher's
    logits on it, enters a buffer of ``buffer_size`` images (refreshed by
    ``refresh_policy``), and each student step draws its batch by priority with importance
    weights, then feeds the drawn images' per-sample student loss back as their priority
    (KL for DAFL, ZSKT and DFQ, as in SSD-KD; the L1 distance of the logits for DFAD)."""
    phi_weight: bool = False
    """[ours] Weight the one-hot term per image by SSD-KD's φ =
    (1 − count(c)/|B|)·(1 − p_T)^γ read at the teacher's class c and maximum probability
    p_T (the one-hot target is that class), against the class histogram of the generator's
    batch (``transfer="live"``) or of the buffer (``"buffer"``): Σ φ·CE / Σ φ."""
    gamma: float = 2.0
    """γ of φ's difficulty factor (with ``phi_weight``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(
            self,
            "iterations",
            "g_steps",
            "synthesis_batch_size",
            "latent_dim",
            "generator_width",
            "lr_g",
        )
        check_non_negative(
            self, "bn_weight", "oh_weight", "adv_weight", "balance_weight", "act_weight"
        )
        check_choice(self, "adversarial", ("kl", "l1"))
        check_choice(self, "student_optimizer", ("sgd", "adam"))
        check_choice(self, "student_images", ("fresh", "same"))
        check_choice(self, "transfer", ("live", "buffer"))
        check_choice(self, "lr_g_schedule", ("constant", "cosine"))
        check_non_negative(self, "gamma")
        self._check_priority_set()
        if self.refresh_policy == "lowest-phi":
            raise ValueError(
                "Expected `refresh_policy` 'fifo' or 'reservoir' for the generator family "
                "(it keeps no φ of stored images), got 'lowest-phi'"
            )
        if self.phi_weight and self.oh_weight == 0:
            raise ValueError(
                "Expected `oh_weight` > 0 with `phi_weight` (φ weights the one-hot term), got 0"
            )
        if self.transfer == "buffer" and self.synthesis_batch_size > self.buffer_size:
            raise ValueError(
                f"Expected `synthesis_batch_size` <= `buffer_size` ({self.buffer_size}) with "
                f"transfer='buffer', got {self.synthesis_batch_size}"
            )
        if (
            self.transfer == "live"
            and self.student_images == "same"
            and self.kd_batch_size != self.synthesis_batch_size
        ):
            raise ValueError(
                "Expected `kd_batch_size` == `synthesis_batch_size` with student_images="
                f"'same' (the student learns from the generator's batch), got "
                f"{self.kd_batch_size} and {self.synthesis_batch_size}"
            )


@contextmanager
def _penultimate(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Record the input of ``model``'s last linear layer (its penultimate features)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    recorded: list[torch.Tensor] = []

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        del module
        recorded.append(inputs[0])

    handle = linears[-1].register_forward_pre_hook(hook)
    try:
        yield recorded
    finally:
        handle.remove()


class GeneratorFamily(DistillationMethod):
    """A generator and a student trained in alternation, the student on live images.

    Subclasses set ``config_class`` (a subclass of :class:`GeneratorFamilyFields`),
    ``needs_batchnorm`` and, where the student's loss is not KL at the configured
    temperature, :meth:`student_loss`. The generator is the DCGAN one of Fast-DFKD
    (:class:`~ssdkd.generators.DCGANGenerator`, sigmoid output), initialised from the
    run's seed, its BatchNorm layers normalising with the batch's statistics only.
    During generator updates the student is in eval mode, so the generator's images do
    not move the student's BatchNorm statistics.

    With several processes each rank draws its share of every batch, generator
    gradients are averaged and the generator stays identical on every rank.
    """

    config: GeneratorFamilyFields

    def __init__(self, teacher: nn.Module, student: nn.Module, config: Any, **kwargs: Any) -> None:
        super().__init__(teacher, student, config, **kwargs)
        if config.bn_weight > 0 and not self.needs_batchnorm:
            raise ValueError(
                f"Expected `bn_weight` 0 for {type(self).__name__}, whose teacher needs no "
                f"BatchNorm layers, got {config.bn_weight}"
            )
        if config.act_weight > 0 and not any(isinstance(m, nn.Linear) for m in teacher.modules()):
            raise ValueError(
                "Expected the teacher to end in an nn.Linear layer for the activation term "
                f"(act_weight {config.act_weight} > 0); it has none"
            )
        self.synthesis_share = self.parallel.share(
            config.synthesis_batch_size, "synthesis_batch_size"
        )
        channels, size, _ = self.image_shape
        # nn.Module initialisers read torch's global generator only: seed a fork of it.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            generator = DCGANGenerator(
                latent_dim=config.latent_dim,
                image_size=size,
                channels=channels,
                width=config.generator_width,
            )
        # The generator always normalises with its batch's statistics (it is never run
        # in eval mode); without running statistics it holds no state that each rank's
        # own batches would make differ.
        for module in generator.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.track_running_stats = False
                module.running_mean = module.running_var = module.num_batches_tracked = None
        self.generator = generator.to(self.device)
        self.parallel.broadcast_(self.generator)
        self.generator_optimizer = torch.optim.Adam(
            self.generator.parameters(), lr=config.lr_g, betas=(0.5, 0.999)
        )
        self.generator_scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        if config.lr_g_schedule == "cosine":
            self.generator_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                self.generator_optimizer,
                T_max=max(1, config.rounds * config.iterations * config.g_steps),
            )
        # Its own instance: the generator's loss needs its own fp16 gradient scale.
        self.generator_precision = Precision(self.precision.mode, self.device)
        self._last_batch: torch.Tensor | None = None
        self.transfer: PrioritySet | None = None
        """SSD-KD's transfer set, with ``transfer="buffer"``."""
        if config.transfer == "buffer":
            self.transfer = PrioritySet(
                config,
                total_steps=self.student_steps_total(),
                device=self.device,
                generator=self.streams.transfer,
                parallel=self.parallel,
            )
        # The one-hot target is the teacher's class: φ's literal reading, no targets.
        self.modulator = DiversityDifficultyModulator(
            config.gamma, confidence="max", diversity_class="predicted", validate=False
        )

    def round_plan(self, round_index: int) -> RoundPlan:
        cfg = self.config
        return RoundPlan(cfg.iterations, cfg.kd_steps if round_index >= cfg.warmup_rounds else 0)

    def student_steps_total(self) -> int:
        cfg = self.config
        return (cfg.rounds - cfg.warmup_rounds) * cfg.iterations * cfg.kd_steps

    def student_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        if cfg.student_optimizer == "adam":
            return torch.optim.Adam(
                self.student.parameters(), lr=cfg.student_lr, weight_decay=cfg.student_weight_decay
            )
        return super().student_optimizer()

    def _images(self, count: int) -> torch.Tensor:
        z = torch.randn(
            count, self.config.latent_dim, generator=self.streams.synthesis, device=self.device
        )
        with self.precision.autocast():
            return self.generator(z).float()

    def _generator_loss(
        self, images: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """The generator's loss, its parts (and diagnostics) and the teacher's logits."""
        cfg = self.config
        inputs = self.model_input(images)
        parts: dict[str, torch.Tensor] = {}
        diagnostics: dict[str, torch.Tensor] = {}
        with (
            _penultimate(self.teacher) if cfg.act_weight > 0 else _nothing() as features,
            BNStatsHook(self.teacher) if cfg.bn_weight > 0 else _nothing() as bn,
        ):
            with self.precision.autocast():
                teacher_logits = self.teacher(inputs).float()
            if cfg.bn_weight > 0:
                parts["loss_bn"] = bn_stat_loss(bn.stats)
        if cfg.oh_weight > 0:
            ce = F.cross_entropy(teacher_logits, teacher_logits.argmax(dim=1), reduction="none")
            if cfg.phi_weight:
                phi = self.modulator(teacher_logits.detach(), self._phi_counts(teacher_logits))
                diagnostics["phi_mean"] = phi.mean()
                ce = self.modulator.normalize(phi) * ce
            parts["loss_oh"] = ce.mean()
        if cfg.balance_weight > 0:
            parts["loss_balance"] = information_entropy(teacher_logits)
        if cfg.act_weight > 0:
            parts["loss_act"] = activation_loss(features[-1].float(), reduction="mean")
        if cfg.adv_weight > 0:
            with self.precision.autocast():
                student_logits = self.student(inputs).float()
            if cfg.adversarial == "l1":
                parts["loss_adv"] = -logit_l1(student_logits, teacher_logits, reduction="mean")
            else:
                parts["loss_adv"] = -kd_kl_div(
                    student_logits, teacher_logits, temperature=1.0, reduction="mean"
                )
        weights = {
            "loss_bn": cfg.bn_weight,
            "loss_oh": cfg.oh_weight,
            "loss_balance": cfg.balance_weight,
            "loss_act": cfg.act_weight,
            "loss_adv": cfg.adv_weight,
        }
        loss = sum((weights[k] * v for k, v in parts.items()), torch.zeros((), device=self.device))
        histogram = torch.bincount(teacher_logits.argmax(dim=1), minlength=self.num_classes)
        diagnostics["synth_class_entropy"] = counts_entropy(histogram[: self.num_classes])
        return loss, {**parts, **diagnostics}, teacher_logits

    def _phi_counts(self, teacher_logits: torch.Tensor) -> torch.Tensor:
        """The class histogram φ's diversity factor reads: the buffer's, or that of the
        generator's batch (over every rank's share)."""
        if self.transfer is not None:
            return self.transfer.class_counts(self.num_classes)
        classes = teacher_logits.detach().argmax(dim=1)
        return self.parallel.sum(torch.bincount(classes, minlength=self.num_classes))

    def synthesize(self, round_index: int) -> dict[str, float]:
        """``g_steps`` generator updates, each on fresh latents; returns the last one's
        loss parts."""
        del round_index
        was_training = self.student.training
        self.student.eval()
        try:
            for _ in range(self.config.g_steps):
                images = self._images(self.synthesis_share)
                # Gradients flow through the student to the images, none into its weights.
                with frozen_weights(self.student):
                    loss, parts, teacher_logits = self._generator_loss(images)
                self.generator_precision.step(
                    loss, self.generator_optimizer, parallel=self.parallel
                )
                if self.generator_scheduler is not None:
                    self.generator_scheduler.step()
                if self.transfer is not None:
                    logits = teacher_logits.detach()
                    self.transfer.admit(
                        {
                            "images": images.detach(),
                            "labels": logits.argmax(dim=1),
                            "teacher_logits": logits,
                        },
                        offered_before=self.images_synthesized,
                    )
                self.images_synthesized += self.synthesis_share
                self._last_batch = images.detach()
        finally:
            self.student.train(was_training)
        values = torch.stack([loss.detach(), *parts.values()]).tolist()
        return {"loss_g": values[0], **dict(zip(parts, values[1:], strict=True))}

    def distill_step(self) -> dict[str, torch.Tensor | float]:
        if self.transfer is not None:
            return self._distill_from_buffer(self.transfer)
        if self.config.student_images == "same" and self._last_batch is not None:
            images = self._last_batch
        else:
            with torch.no_grad():
                images = self._images(self.kd_batch_share)
            self.images_synthesized += self.kd_batch_share
        metrics = self.trainer.step(images).metrics
        self.kd_steps_done += 1
        return dict(metrics)

    def _distill_from_buffer(self, transfer: PrioritySet) -> dict[str, torch.Tensor | float]:
        """One student step on a priority draw from the transfer set (the teacher's stored
        logits as the reference without augmentation), then the priority feedback."""
        cfg = self.config
        sample, weights = transfer.draw(self.kd_batch_share)
        stored = None if cfg.kd_augment or cfg.kd_mixup else sample.data["teacher_logits"]
        metrics, per_sample, applied = self.trainer.step(
            sample.data["images"], weights, teacher_logits=stored
        )
        self.kd_steps_done += 1
        # The priority is the drawn images' student loss (KL·T² for most of the family, L1
        # for DFAD); P ∝ δ^α and the normalised weights do not depend on its scale.
        transfer.feedback(sample, per_sample, weights, applied, steps_done=self.kd_steps_done)
        return {**metrics, "beta": transfer.buffer.beta}

    def synthetic_images(self) -> torch.Tensor:
        if self.transfer is not None:
            return self.transfer.buffer.data["images"][: len(self.transfer.buffer)]
        if self._last_batch is None:
            return torch.zeros(0, *self.image_shape, device=self.device)
        return self._last_batch

    def _extra_state(self) -> dict[str, Any]:
        buffer = None if self.transfer is None else self.transfer.buffer.state_dict()
        return {
            "buffer": buffer,
            "generator": self.generator.state_dict(),
            "generator_optimizer": self.generator_optimizer.state_dict(),
            "generator_scheduler": (
                None if self.generator_scheduler is None else self.generator_scheduler.state_dict()
            ),
            "generator_precision": self.generator_precision.state_dict(),
            "last_batch": self._last_batch,
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        if self.transfer is not None:
            self.transfer.buffer.load_state_dict(state["buffer"])
        self.generator.load_state_dict(state["generator"])
        self.generator_optimizer.load_state_dict(state["generator_optimizer"])
        if self.generator_scheduler is not None:
            self.generator_scheduler.load_state_dict(state["generator_scheduler"])
        self.generator_precision.load_state_dict(state["generator_precision"])
        last = state["last_batch"]
        self._last_batch = None if last is None else last.to(self.device)


@contextmanager
def _nothing() -> Iterator[Any]:
    yield None

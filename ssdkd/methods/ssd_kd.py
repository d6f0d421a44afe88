"""SSD-KD (Liu et al., CVPR 2024): its config, presets and method.

φ-modulated inversion into a small buffer, priority-sampled distillation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from ssdkd.losses import DiversityDifficultyModulator
from ssdkd.methods.base import DistillationMethod, MethodSpec
from ssdkd.methods.budgets import DIGITS_BUDGET, FASHION_BUDGET, FASHION_GENERATOR
from ssdkd.methods.config import (
    MetaGeneratorFields,
    check_choice,
    check_non_negative,
    check_positive,
)
from ssdkd.methods.diagnostics import counts_entropy
from ssdkd.methods.meta_synthesis import MetaGeneratorSynthesis
from ssdkd.sampling import PriorityBuffer, admit, global_mean_normalized, linear_schedule

__all__ = [
    "SPEC",
    "SSDKD",
    "SSDKD_DIGITS",
    "SSDKD_FASHION_MNIST",
    "SSDKD_PAPER",
    "SSDKDConfig",
    "priority_of",
]


@dataclass(frozen=True)
class SSDKDConfig(MetaGeneratorFields):
    """SSD-KD (Liu et al., CVPR 2024): small buffer, φ-modulated inversion, priority KD.

    Inversion is the Fast-DFKD meta-generator round with the task loss weighted by φ;
    distillation draws from a fixed small :class:`~ssdkd.sampling.PriorityBuffer` by
    priority δ = w · KL(teacher ‖ student) with importance weights w.
    """

    buffer_size: int = 5000
    """Buffer capacity: 10% of the original training set (5,000 for CIFAR-10)."""
    kd_steps: int = 100
    """[ours] KD steps per round; the paper gives no number. A quarter of Fast-DFKD's 400:
    the small buffer is re-visited by priority instead of swept uniformly."""
    gamma: float = 2.0
    """[ours] Focal exponent γ of φ's difficulty factor (the paper gives no value)."""
    phi_confidence: Literal["target", "max"] = "target"
    """[ours] What p_T in φ's difficulty factor reads: the teacher's probability of the
    sampled target label (``"target"``), or its maximum probability (``"max"``). With
    "max", an image the teacher confidently puts in the *wrong* class gets φ ≈ 0, which
    switches off the task loss that would pull it towards its target."""
    phi_class: Literal["target", "predicted"] = "target"
    """[ours] Which class φ's diversity factor looks up in the buffer's histogram of teacher
    classes: the class the image is asked to become (``"target"``), or the teacher's class
    of the image (``"predicted"``). With "predicted", a class the generator over-produces
    only loses task weight, which cannot steer the generator towards the rare classes."""
    phi_normalization: Literal["weights", "batch"] = "weights"
    """[ours] How the φ-weighted task loss is averaged: Σ φ_i·CE_i / Σ φ_i (``"weights"``),
    which keeps the task loss at the scale ``oh_weight`` was published for, or
    Σ φ_i·CE_i / B (``"batch"``), which shrinks it by mean φ (a few hundredths at γ = 2)."""
    use_diversity: bool = True
    """Ablation switch: False drops φ's diversity factor."""
    use_difficulty: bool = True
    """Ablation switch: False drops φ's difficulty factor (γ = 0)."""
    use_phi: bool = True
    """Ablation switch: False trains the generator with an unweighted task loss (φ ≡ 1)."""
    refresh_policy: Literal["fifo", "lowest-phi", "reservoir"] = "fifo"
    """[ours] Which entries of a full buffer a new batch replaces: the oldest ones
    (``"fifo"``), those with the lowest φ (``"lowest-phi"``: φ of the stored images,
    read with the teacher's class and maximum probability at admission against the current
    class histogram; independent of ``use_phi``), or random ones such that the buffer stays
    a uniform sample of every image synthesised so far (``"reservoir"``,
    :func:`~ssdkd.sampling.reservoir_slots`: the t-th image enters with probability
    capacity / t). Lowest φ means a common class *and* a confident teacher, so that
    policy evicts the most confident images first."""
    priority_sampling: bool = True
    """Ablation switch: False draws KD batches uniformly from the same buffer (α = 0)."""
    reuse_teacher_logits: bool = True
    """[ours] Without KD augmentation and mixup, a KD step takes the teacher's logits
    stored with each image at admission instead of running the teacher again (the
    paper: sampling "reuses the values computed for φ"); with augmentation the batch is
    new to the teacher and it runs."""
    priority_form: Literal["w-kl", "kl"] = "w-kl"
    """The priority a KD step gives each drawn image: δ = w·KL, the importance weight of
    the draw times its KL (the paper's), or δ = KL (standard prioritised replay). With
    w ∝ P^(−β) the paper's form converges to P ∝ KL^(α/(1+αβ)), a flatter sampling than
    the α it is configured with (:func:`priority_of`; ``docs/concepts/ssd-kd.md``)."""
    alpha: float = 0.6
    """Priority exponent α of P(i) ∝ (δ_i + ε)^α."""
    beta: float = 0.4
    """Initial importance-sampling exponent β₀."""
    beta_final: float = 1.0
    """[ours] β is annealed linearly from ``beta`` to this value over all KD steps."""
    priority_eps: float = 1e-6
    """ε added to every priority."""
    weight_norm: Literal["mean", "batch", "max"] = "mean"
    """[ours] Normalisation of the importance weights (see
    :class:`~ssdkd.sampling.PriorityBuffer`): to mean 1 over the batch (``"mean"``), by the
    batch maximum (``"batch"``), or by the buffer-wide maximum (``"max"``, the PER paper's).
    "max" divides by the weight of the smallest priority in the buffer, and δ = w·KL
    reaches ~0 on images the student already fits, so one such image scales every weight
    (and the KD gradient) towards 0."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "buffer_size", "priority_eps")
        check_non_negative(self, "gamma", "alpha")
        check_choice(self, "refresh_policy", ("fifo", "lowest-phi", "reservoir"))
        check_choice(self, "priority_form", ("w-kl", "kl"))
        check_choice(self, "phi_confidence", ("target", "max"))
        check_choice(self, "phi_class", ("target", "predicted"))
        check_choice(self, "phi_normalization", ("weights", "batch"))
        check_choice(self, "weight_norm", ("mean", "batch", "max"))
        if self.synthesis_batch_size > self.buffer_size:
            raise ValueError(
                f"Expected `synthesis_batch_size` <= `buffer_size` ({self.buffer_size}), "
                f"got {self.synthesis_batch_size}"
            )
        for name in ("beta", "beta_final"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Expected `{name}` in [0, 1], got {value!r}")


SSDKD_PAPER = SSDKDConfig()
"""SSD-KD's published CIFAR settings (the generator and schedule of Fast-2)."""
SSDKD_DIGITS = SSDKDConfig(
    **{**DIGITS_BUDGET, "rounds": 40},
    synthesis_batch_size=128,
    generator_width=32,
    latent_dim=64,
    kd_steps=50,
    buffer_size=1000,
)
"""SSD-KD scaled to digits: a 1,000-image buffer, 40 rounds of 128 images, 50 KD steps."""
SSDKD_FASHION_MNIST = SSDKDConfig(
    **FASHION_BUDGET,
    **FASHION_GENERATOR,
    rounds=150,
    kd_steps=60,
    # [ours] 3,840 images: a fifth of Fast-2's 19,200-image pool, and a third of the
    # 11,520 images synthesised, so the buffer fills at round 30 and is refreshed.
    buffer_size=3840,
    # [ours] Synthesis stops after round 90; the last 60 rounds distil on the buffer. While
    # the buffer took in the late adversarial images the student drifted away from the
    # teacher on real images (KL 0.17 → 0.24) and fell 2.5 points after its peak; with
    # synthesis stopped it kept its peak (calibration point 9 of the
    # benchmarks record in docs/notes).
    synthesis_share=0.6,
    # [ours] Reservoir refresh: with FIFO the full buffer is a window of the last 47
    # rounds, the generator's images lose within-class diversity late in the run and
    # the student fell ~1.5 points after its mid-run peak; a reservoir sample of every
    # round ended 2 points higher on validation (calibration point 6 of the
    # benchmarks record in docs/notes).
    refresh_policy="reservoir",
)
"""SSD-KD at 28×28: a 3,840-image buffer kept a uniform sample of the 11,520 images
synthesised in the first 90 of 150 rounds, 60 KD steps per round (about 9 minutes on 2 AMD
EPYC cores)."""


def priority_of(kl: torch.Tensor, weights: torch.Tensor, form: str) -> torch.Tensor:
    """The priority δ of drawn images from their KL and importance weights.

    ``"w-kl"`` (the paper): δ = w·KL. Sampling with P ∝ δ^α and w ∝ P^(−β) makes the
    update δ ← w·KL a contraction whose fixed point is δ ∝ KL^(1/(1+αβ)), so the
    sampling settles at P ∝ KL^(α/(1+αβ)) (0.48 for α = 0.6, β = 0.4; 0.375 at β = 1).
    ``"kl"`` (standard prioritised replay): δ = KL, and P ∝ KL^α.

    Raises:
        ValueError: ``form`` is neither.

    Examples:
        >>> priority_of(torch.tensor([2.0]), torch.tensor([0.5]), "w-kl")
        tensor([1.])
    """
    if form == "w-kl":
        return weights * kl
    if form == "kl":
        return kl
    raise ValueError(f"Expected `form` 'w-kl' or 'kl', got {form!r}")


class SSDKD(DistillationMethod):
    """SSD-KD (Liu et al., CVPR 2024), as reconstructed in ``docs/concepts/ssd-kd.md``.

    Round r:

    1. **Inversion.** One meta-generator round (Fast-DFKD's) whose task loss is weighted
       per sample by φ(x) = (1 − count_B(c(x)) / |B|) · (1 − p_T(x))^γ, computed from
       the teacher's softmax and the buffer's current histogram of teacher classes. By
       default c(x) and p_T(x) are read at the target class y the generator was asked
       for (``phi_class="target"``, ``phi_confidence="target"``) and the task loss is
       Σ φ·CE / Σ φ (``phi_normalization="weights"``); the paper's literal reading (the
       teacher's argmax and its probability, divided by B) is ``"predicted"``, ``"max"``
       and ``"batch"``.
    2. **Buffer update.** The round's best batch enters the fixed-size buffer with the
       current maximum priority; once the buffer is full it replaces the oldest entries,
       those with the lowest φ (recomputed with the current histogram), or random ones
       that keep the buffer a uniform sample of all rounds (``refresh_policy``).
    3. **Distillation** (``kd_steps`` calls of :meth:`distill_step`). A batch drawn with
       P(i) ∝ (δ_i + ε)^α; loss = mean(w_i · KL_i · T²) with importance weights w_i;
       then δ_i ← w_i · KL_i for the drawn items and β moves linearly towards
       ``beta_final``.

    The buffer stores, per image, the teacher's class (``labels``) and logits
    (``teacher_logits``) at admission, so φ and the class histogram need no extra
    teacher pass.

    With several processes the buffer is sharded: each rank owns ``buffer_size / N`` of
    the slots (``buffer_size`` must be divisible by the number of processes), admits its
    own images and draws its share of each KD batch from them; φ reads the class histogram
    of all shards together, and the importance weights are normalised over the global
    batch (see ``docs/concepts/distributed.md``).

    See :class:`~ssdkd.methods.base.DistillationMethod` for the arguments.

    Examples:
        >>> from ssdkd.methods.ssd_kd import SSDKD_DIGITS
        >>> from ssdkd.models import create_model
        >>> teacher = create_model("tiny_cnn", num_classes=10, in_channels=1, image_size=8)
        >>> student = create_model("tiny_cnn", num_classes=10, in_channels=1, image_size=8)
        >>> method = SSDKD(teacher, student, SSDKD_DIGITS, num_classes=10,
        ...                image_shape=(1, 8, 8), normalization=((0.3,), (0.4,)))
        >>> _ = method.synthesize(0)
        >>> len(method.buffer)
        128
        >>> "kd_loss" in method.distill_step()
        True
    """

    config_class = SSDKDConfig
    config: SSDKDConfig

    def __init__(
        self, teacher: nn.Module, student: nn.Module, config: SSDKDConfig, **kwargs: Any
    ) -> None:
        super().__init__(teacher, student, config, **kwargs)
        self.synthesis = MetaGeneratorSynthesis.for_method(self, config)
        # Equal shards: every rank then admits, evicts and reduces in the same rounds.
        shard = self.parallel.share(config.buffer_size, "buffer_size")
        self.buffer = PriorityBuffer(
            shard,
            # α = 0 makes every P(i) equal and every importance weight 1: the ablation
            # "without priority sampling" draws uniformly from the same buffer.
            alpha=config.alpha if config.priority_sampling else 0.0,
            beta=config.beta,
            eps=config.priority_eps,
            device=self.device,
            generator=self.streams.transfer,
            weight_norm=config.weight_norm,
            # Priorities come from the KD step (clamped, finite or the step is skipped):
            # no value checks, so no host synchronisation per update.
            validate=False,
        )
        gamma = config.gamma if config.use_difficulty else 0.0
        # Inputs come from the teacher and the buffer; skipping the value checks keeps φ
        # free of host synchronisation inside the generator's inner loop.
        self.modulator = DiversityDifficultyModulator(
            gamma,
            confidence="target" if config.phi_confidence == "target" else "max",
            diversity_class=config.phi_class,
            normalization=config.phi_normalization,
            validate=False,
        )
        """φ of synthesised images, read as the config says; users' loops call the same."""
        self._stored_modulator = DiversityDifficultyModulator(
            gamma, confidence="max", diversity_class="predicted", validate=False
        )
        self._phi_mean: torch.Tensor | None = None

    def _buffer_counts(self) -> torch.Tensor:
        """The class histogram of every rank's buffer shard together."""
        if len(self.buffer) == 0:
            local = torch.zeros(self.num_classes, dtype=torch.long, device=self.device)
        else:
            local = self.buffer.class_counts("labels", self.num_classes)
        return self.parallel.sum(local)

    def _class_counts(self) -> torch.Tensor:
        if not self.config.use_diversity:
            # An empty histogram makes φ's diversity factor 1 for every sample.
            return torch.zeros(self.num_classes, dtype=torch.long, device=self.device)
        return self._buffer_counts()

    def phi(
        self, teacher_logits: torch.Tensor, targets: torch.Tensor | None = None
    ) -> torch.Tensor:
        """φ of a batch against the buffer's current class histogram, shape ``(B,)``.

        With ``targets`` (during synthesis), φ reads them as ``phi_confidence`` and
        ``phi_class`` say (:attr:`modulator`); without (stored images, for eviction), it
        reads the teacher's class and maximum probability.
        """
        counts = self._class_counts()
        if targets is None:
            return self._stored_modulator(teacher_logits, counts)
        # The literal reading (max, predicted) takes no targets.
        return self.modulator(
            teacher_logits, counts, targets if self.modulator.needs_targets else None
        )

    def _task_weights(self, teacher_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """φ as the per-sample weights of the generator's task loss (``use_phi``)."""
        phi = self.phi(teacher_logits, targets)
        self._phi_mean = phi.mean()
        return self.modulator.normalize(phi)

    def synthesize(self, round_index: int) -> dict[str, float]:
        self._phi_mean = None
        synthesis_metrics: dict[str, float] = {}
        if self.config.synthesizes(round_index):
            out = self.synthesis.run(
                adversarial=round_index >= self.config.warmup_rounds,
                task_weights=self._task_weights if self.config.use_phi else None,
            )
            self._admit(
                {
                    "images": out.images,
                    "labels": out.teacher_logits.argmax(dim=1),
                    "teacher_logits": out.teacher_logits,
                }
            )
            self.images_synthesized += int(out.images.shape[0])
            synthesis_metrics = out.metrics
        size = len(self.buffer)
        stored = self.buffer.data["teacher_logits"][:size].softmax(dim=1).max(dim=1).values
        # Over every rank's shard: the global histogram, and confidence sum and count.
        totals = self.parallel.sum(
            torch.stack([stored.sum(), torch.tensor(float(size), device=stored.device)])
        )
        entropy, confidence, global_size = torch.stack(
            [counts_entropy(self._buffer_counts()), totals[0] / totals[1], totals[1]]
        ).tolist()
        metrics = {
            **synthesis_metrics,
            "images_synthesized": float(self.images_synthesized),
            "buffer_size": global_size,
            "data_class_entropy": entropy,
            # What the refresh policy keeps: the teacher's mean confidence on the buffer.
            "data_teacher_confidence": confidence,
        }
        if self._phi_mean is not None:
            # φ of the round's last inner generator step.
            metrics["phi_mean"] = float(self._phi_mean)
        return metrics

    def _admit(self, fields: dict[str, torch.Tensor]) -> None:
        """Add a batch: fill free slots, then replace old entries by ``refresh_policy``
        (:func:`~ssdkd.sampling.admit`; "lowest-phi" scores the stored images by φ)."""
        policy = self.config.refresh_policy
        admit(
            self.buffer,
            fields,
            policy="lowest-score" if policy == "lowest-phi" else policy,
            offered_before=self.images_synthesized,
            generator=self.streams.transfer,
            scores=lambda: self.phi(self.buffer.data["teacher_logits"]),
        )

    def distill_step(self) -> dict[str, torch.Tensor | float]:
        cfg = self.config
        sample = self.buffer.sample(self.kd_batch_share)
        weights = sample.weights
        if self.parallel.active:
            weights = self._global_weights(sample.probabilities).to(weights.dtype)
        stored = (
            sample.data["teacher_logits"]
            if cfg.reuse_teacher_logits and not cfg.kd_augment and not cfg.kd_mixup
            else None
        )
        metrics, per_sample, applied = self.trainer.step(
            sample.data["images"], weights, teacher_logits=stored
        )
        kl = per_sample / cfg.temperature**2  # the student loss is KL · T²
        # δ_i = w_i · KL_i (the paper's priority) or KL_i (`priority_form`). KL ≥ 0, but float32
        # rounding gives values like −1e-7 when teacher and student agree; the buffer
        # rightly rejects negative priorities. A skipped step keeps the old priorities
        # (decided on the device: no host read).
        delta = priority_of(kl, weights, cfg.priority_form).clamp_min(0.0).to(torch.float64)
        self.buffer.update_priorities(
            sample.indices,
            torch.where(applied, delta, self.buffer.priorities(sample.indices)),
            generations=sample.generations,
        )
        self.kd_steps_done += 1
        total = (cfg.rounds - cfg.warmup_rounds) * cfg.kd_steps
        self.buffer.beta = linear_schedule(cfg.beta, cfg.beta_final, self.kd_steps_done, total)
        # `kl` must estimate the mean over the buffer, as the uniform pools' `kl` does, but
        # priority draws over-weight high-KL items: E_P[KL_i / (N·P(i))] = (1/N) Σ_i KL_i,
        # so each draw is divided by N·P(i) (N = this rank's shard, P(i) within it).
        size = len(self.buffer)
        metrics["kl_drawn"] = metrics["kl"]
        metrics["kl"] = (per_sample / (size * sample.probabilities).to(per_sample.dtype)).mean()
        return {**metrics, "beta": self.buffer.beta}

    def _global_weights(self, probabilities: torch.Tensor) -> torch.Tensor:
        """Importance weights of this rank's draws, normalised over the global batch.

        Rank r draws its share from its own shard, so item i is drawn with
        ``P(i) = p_i / N`` where ``p_i`` is its probability within the shard. The common
        factor 1/N cancels in every normalisation: ``w_i = (p_i / p_min)^(−β)`` with
        ``p_min`` the smallest ``p`` of the global batch (``"batch"``) or of every live
        item of every shard (``"max"``); ``"mean"`` is ``p_i^(−β)`` divided by its mean
        over the global batch (``p_min`` would cancel: one collective instead of two). In
        one process this is the buffer's own weights.
        """
        buffer = self.buffer
        p = probabilities.to(torch.float64)
        if buffer.weight_norm == "mean":
            weights = p**-buffer.beta
            # The method's DataParallel decides: a one-process method inside a process
            # group (another job's) must not join that group's collectives.
            return (
                global_mean_normalized(weights)
                if self.parallel.active
                else weights / weights.mean()
            )
        # The smallest P of every live item ("max") or of the drawn batch.
        shard_min = buffer.tree.min / buffer.tree.total if buffer.weight_norm == "max" else p.min()
        weights = (p / self.parallel.min(shard_min)) ** -buffer.beta
        return weights.clamp_(torch.finfo(torch.float64).tiny, 1.0)

    def synthetic_images(self) -> torch.Tensor:
        return self.buffer.data["images"] if len(self.buffer) else torch.zeros(0, *self.image_shape)

    def _extra_state(self) -> dict[str, Any]:
        return {"synthesis": self.synthesis.state_dict(), "buffer": self.buffer.state_dict()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.synthesis.load_state_dict(state["synthesis"])
        self.buffer.load_state_dict(state["buffer"])


SPEC = MethodSpec(
    name="ssd-kd",
    method_class=SSDKD,
    presets={"paper": SSDKD_PAPER, "digits": SSDKD_DIGITS, "fashion-mnist": SSDKD_FASHION_MNIST},
    summary="SSD-KD (CVPR 2024): φ-modulated inversion into a small priority-sampled buffer",
)
"""SSD-KD in the registry."""

"""SSD-KD's transfer set as a role: a fixed-size buffer of synthetic images drawn by
priority, with importance weights, and priorities fed back from the student's KL.

:class:`PrioritySet` is what :class:`~ssdkd.methods.SSDKD` distils from, and what the
generator family (:class:`~ssdkd.methods.GeneratorFamily`, ``transfer="buffer"``)
distils from instead of its live generator. Its settings are the fields of
:class:`PrioritySetFields`, which both configs carry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from ssdkd.methods.config import check_choice, check_non_negative, check_positive
from ssdkd.methods.parallel import DataParallel
from ssdkd.sampling import (
    PriorityBuffer,
    PrioritySample,
    admit,
    global_mean_normalized,
    linear_schedule,
)

__all__ = ["PrioritySet", "PrioritySetFields", "priority_of"]


@dataclass(frozen=True)
class PrioritySetFields:
    """The settings of a :class:`PrioritySet`: a group of fields, not a method's config."""

    buffer_size: int = 5000
    """Buffer capacity: 10% of the original training set (5,000 for CIFAR-10)."""
    refresh_policy: Literal["fifo", "lowest-phi", "reservoir"] = "fifo"
    """[ours] Which entries of a full buffer a new batch replaces: the oldest ones
    (``"fifo"``), those with the lowest φ (``"lowest-phi"``, SSD-KD only: φ of the stored
    images, read with the teacher's class and maximum probability at admission against the
    current class histogram), or random ones such that the buffer stays a uniform sample of
    every image synthesised so far (``"reservoir"``, :func:`~ssdkd.sampling.reservoir_slots`:
    the t-th image enters with probability capacity / t). Lowest φ means a common class
    *and* a confident teacher, so that policy evicts the most confident images first."""
    priority_sampling: bool = True
    """Ablation switch: False draws KD batches uniformly from the same buffer (α = 0)."""
    priority_form: Literal["w-kl", "kl"] = "w-kl"
    """The priority a KD step gives each drawn image: δ = w·KL, the importance weight of
    the draw times its KL (the paper's), or δ = KL (standard prioritised replay). With
    w ∝ P^(−β) the paper's form converges to P ∝ KL^(α/(1+αβ)), a flatter sampling than
    the α it is configured with (:func:`priority_of`)."""
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

    def _check_priority_set(self) -> None:
        """Validate these fields (called by the ``__post_init__`` of the configs that
        carry them)."""
        check_positive(self, "buffer_size", "priority_eps")
        check_non_negative(self, "alpha")
        check_choice(self, "refresh_policy", ("fifo", "lowest-phi", "reservoir"))
        check_choice(self, "priority_form", ("w-kl", "kl"))
        check_choice(self, "weight_norm", ("mean", "batch", "max"))
        for name in ("beta", "beta_final"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Expected `{name}` in [0, 1], got {value!r}")


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


class PrioritySet:
    """A :class:`~ssdkd.sampling.PriorityBuffer` of synthetic images with the teacher's
    class (``labels``) and logits (``teacher_logits``) at admission, refreshed by a
    policy once full, drawn by priority with importance weights, its priorities fed back
    from the student's per-sample KL.

    With several processes each rank owns ``buffer_size / N`` slots (:meth:`draw` takes
    this rank's share of a batch) and the importance weights are normalised over the
    global batch.

    Args:
        fields: The settings (a config carrying :class:`PrioritySetFields`).
        total_steps: Student steps of the whole run, over which β is annealed.
        device: Where the buffer lives.
        generator: The random stream of the transfer role (draws and reservoir refresh).
        parallel: The ranks the buffer is sharded over.

    Examples:
        >>> ps = PrioritySet(PrioritySetFields(buffer_size=8), total_steps=10)
        >>> _ = ps.admit({"images": torch.rand(4, 1, 2, 2), "labels": torch.zeros(4).long(),
        ...               "teacher_logits": torch.randn(4, 3)}, offered_before=0)
        >>> sample, weights = ps.draw(2)
        >>> ps.feedback(sample, torch.rand(2), weights, torch.tensor(True), steps_done=1)
        >>> len(ps.buffer), ps.buffer.beta
        (4, 0.46)
    """

    def __init__(
        self,
        fields: PrioritySetFields,
        *,
        total_steps: int,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
        parallel: DataParallel | None = None,
    ) -> None:
        self.fields = fields
        self.total_steps = total_steps
        self.parallel = parallel if parallel is not None else DataParallel()
        self.generator = generator
        # Equal shards: every rank then admits, evicts and reduces in the same rounds.
        shard = self.parallel.share(fields.buffer_size, "buffer_size")
        self.buffer = PriorityBuffer(
            shard,
            # α = 0 makes every P(i) equal and every importance weight 1: the ablation
            # "without priority sampling" draws uniformly from the same buffer.
            alpha=fields.alpha if fields.priority_sampling else 0.0,
            beta=fields.beta,
            eps=fields.priority_eps,
            device=device,
            generator=generator,
            weight_norm=fields.weight_norm,
            # Priorities come from the KD step (clamped, finite or the step is skipped):
            # no value checks, so no host synchronisation per update.
            validate=False,
        )

    def class_counts(self, num_classes: int) -> torch.Tensor:
        """The class histogram of every rank's shard together."""
        if len(self.buffer) == 0:
            local = torch.zeros(num_classes, dtype=torch.long, device=self.buffer.device)
        else:
            local = self.buffer.class_counts("labels", num_classes)
        return self.parallel.sum(local)

    def admit(
        self,
        fields: dict[str, torch.Tensor],
        *,
        offered_before: int,
        scores: Callable[[], torch.Tensor] | None = None,
    ) -> None:
        """Add a batch: fill free slots, then replace old entries by ``refresh_policy``
        (:func:`~ssdkd.sampling.admit`; ``"lowest-phi"`` needs ``scores``, the φ of the
        stored images). ``offered_before`` counts the images offered before this batch
        (the reservoir's t)."""
        policy = self.fields.refresh_policy
        admit(
            self.buffer,
            fields,
            policy="lowest-score" if policy == "lowest-phi" else policy,
            offered_before=offered_before,
            generator=self.generator,
            scores=scores,
        )

    def draw(self, batch: int) -> tuple[PrioritySample, torch.Tensor]:
        """This rank's ``batch`` draws and their importance weights (normalised over the
        global batch under several processes)."""
        sample = self.buffer.sample(batch)
        weights = sample.weights
        if self.parallel.active:
            weights = self.global_weights(sample.probabilities).to(weights.dtype)
        return sample, weights

    def feedback(
        self,
        sample: PrioritySample,
        kl: torch.Tensor,
        weights: torch.Tensor,
        applied: torch.Tensor,
        *,
        steps_done: int,
    ) -> None:
        """Set the drawn items' priorities from their KL (``priority_form``) where the
        step was ``applied``, and set β for the run's ``steps_done``-th student step."""
        # KL ≥ 0, but float32 rounding gives values like −1e-7 when teacher and student
        # agree; the buffer rightly rejects negative priorities. A skipped step keeps the
        # old priorities (decided on the device: no host read).
        delta = priority_of(kl, weights, self.fields.priority_form).clamp_min(0.0)
        self.buffer.update_priorities(
            sample.indices,
            torch.where(applied, delta.to(torch.float64), self.buffer.priorities(sample.indices)),
            generations=sample.generations,
        )
        fields = self.fields
        self.buffer.beta = linear_schedule(
            fields.beta, fields.beta_final, steps_done, self.total_steps
        )

    def mean_estimate(self, per_sample: torch.Tensor, sample: PrioritySample) -> torch.Tensor:
        """An unbiased estimate of the buffer-wide mean of a per-sample value from
        priority draws: E_P[v_i / (N·P(i))] = (1/N) Σ_i v_i (N: this rank's shard)."""
        size = len(self.buffer)
        return (per_sample / (size * sample.probabilities).to(per_sample.dtype)).mean()

    def global_weights(self, probabilities: torch.Tensor) -> torch.Tensor:
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
            # The set's DataParallel decides: a one-process run inside a process group
            # (another job's) must not join that group's collectives.
            return (
                global_mean_normalized(weights)
                if self.parallel.active
                else weights / weights.mean()
            )
        # The smallest P of every live item ("max") or of the drawn batch.
        shard_min = buffer.tree.min / buffer.tree.total if buffer.weight_norm == "max" else p.min()
        weights = (p / self.parallel.min(shard_min)) ** -buffer.beta
        return weights.clamp_(torch.finfo(torch.float64).tiny, 1.0)

"""SSD-KD's modulating function φ: diversity (rare classes) × difficulty (low confidence)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssdkd.losses._checks import check_logits, check_number, has_nan

__all__ = ["DiversityDifficultyModulator", "diversity_difficulty_weights"]


def _check_labels(name: str, labels: object, batch: int) -> None:
    if not isinstance(labels, Tensor):
        raise TypeError(f"Expected `{name}` to be a torch.Tensor, got {type(labels).__name__}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"Expected `{name}` to hold integer labels, got {labels.dtype}")
    if labels.dim() != 1 or labels.shape[0] != batch:
        raise ValueError(
            f"Expected `{name}` to have shape ({batch},) like the batch of "
            f"`teacher_logits`, got {tuple(labels.shape)}"
        )


def diversity_difficulty_weights(
    teacher_logits: Tensor,
    class_counts: Tensor,
    *,
    gamma: float = 2.0,
    targets: Tensor | None = None,
    class_labels: Tensor | None = None,
    validate: bool = True,
) -> Tensor:
    """SSD-KD's per-sample modulation φ, detached.

    φ(x) = (1 − count_B(c_T(x)) / |B|) · (1 − p_T(x))^γ

    - c_T(x) = argmax of the teacher's logits (ties: the first maximal class) and
      count_B(c) = ``class_counts[c]``, the number of buffer samples the teacher assigns
      to class c; |B| = ``class_counts.sum()``. The first factor (diversity) is small for
      classes already common in the buffer; an empty buffer (|B| = 0) gives 1.
    - p_T(x) = the teacher's softmax probability of c_T(x), its confidence. The second
      factor (difficulty, focal-loss style) is small for samples the teacher finds easy.
      γ = 0 leaves the diversity factor alone (0⁰ = 1).
    - With ``targets``, p_T(x) is the probability of the given target label instead (the
      label the generator was asked to produce), so a sample that already looks like its
      target gets little weight; the diversity class stays the teacher's argmax, because
      ``class_counts`` is a histogram of teacher-predicted classes and the factor must
      count the same thing. For a converged generator the two readings coincide.
    - With ``class_labels``, the diversity factor reads the frequency of the given class
      instead of c_T(x): pass the sampled targets to weight each sample by how rare the
      class it is *meant* to become is in the buffer (the histogram still counts the
      teacher's classes of the stored images).

    Whether the current batch is already part of ``class_counts`` is the caller's choice
    (the paper's B includes x itself); the function only reads the histogram.

    Args:
        teacher_logits: ``(B, K)`` teacher logits (detached internally).
        class_counts: ``(K,)`` non-negative counts (integer or floating point).
        gamma: γ ≥ 0, the focusing exponent of the difficulty factor.
        targets: Optional ``(B,)`` integer labels in [0, K): read p_T as their probability.
        class_labels: Optional ``(B,)`` integer labels in [0, K): the classes whose buffer
            frequency the diversity factor reads (default: the teacher's argmax).
        validate: Also check *values*: NaN logits, negative counts, targets out of range.
            Each check reads a flag back from the device (a host synchronisation); pass
            ``False`` on hot paths once the inputs are known to be sound. Shapes and types
            are always checked.

    Returns:
        ``(B,)`` weights in [0, 1], without autograd history, in the logits' floating
        dtype (at least float32).

    Raises:
        TypeError: Wrong argument types or dtypes.
        ValueError: Wrong shapes, ``class_counts`` length ≠ K, negative γ; with
            ``validate``: NaN logits, negative counts, targets outside [0, K).

    Examples:
        >>> logits = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
        >>> counts = torch.tensor([3, 1])  # class 0 is common in the buffer
        >>> diversity_difficulty_weights(logits, counts, gamma=0.0)  # diversity only
        tensor([0.2500, 0.2500, 0.7500])
        >>> diversity_difficulty_weights(logits, counts, gamma=1.0)
        tensor([0.1250, 0.0298, 0.0894])
    """
    logits = check_logits("teacher_logits", teacher_logits)
    batch, num_classes = logits.shape
    if not isinstance(class_counts, Tensor):
        raise TypeError(
            f"Expected `class_counts` to be a torch.Tensor, got {type(class_counts).__name__}"
        )
    if class_counts.dtype == torch.bool or class_counts.is_complex():
        raise TypeError(
            f"Expected `class_counts` to hold integer or real counts, got {class_counts.dtype}"
        )
    if class_counts.dim() != 1 or class_counts.shape[0] != num_classes:
        raise ValueError(
            f"Expected `class_counts` to have shape ({num_classes},) (one count per class of "
            f"`teacher_logits`), got {tuple(class_counts.shape)}"
        )
    g = check_number("gamma", gamma, minimum=0.0, inclusive=True)
    for name, labels in (("targets", targets), ("class_labels", class_labels)):
        if labels is not None:
            _check_labels(name, labels, batch)
    if validate:
        if has_nan(logits):
            raise ValueError("Expected `teacher_logits` without NaN values, got some NaN")
        if bool((class_counts < 0).any()):
            raise ValueError(
                f"Expected `class_counts` to be non-negative, got {class_counts.tolist()}"
            )
        for name, labels in (("targets", targets), ("class_labels", class_labels)):
            if labels is not None and bool(((labels < 0) | (labels >= num_classes)).any()):
                raise ValueError(
                    f"Expected `{name}` in [0, {num_classes}), got values from "
                    f"{int(labels.min())} to {int(labels.max())}"
                )

    dtype = torch.promote_types(logits.dtype, torch.float32)
    with torch.no_grad():
        logits = logits.detach().to(dtype)
        probs = torch.softmax(logits, dim=1)
        predicted = logits.argmax(dim=1)
        label = predicted if targets is None else targets.to(logits.device, torch.long)
        # 1 − p_T as the sum of the *other* classes' probabilities: each is computed to
        # full relative precision, while 1 − p (and −expm1(log p), since log_softmax
        # itself rounds to 0) loses everything once p rounds to 1. At a logit margin of
        # 18 in float32, (1 − p)^γ was exactly 0; its true value is ≈ 2e-16 at γ = 2.
        others = probs.scatter(1, label.unsqueeze(1), 0.0).sum(dim=1)
        counted = predicted if class_labels is None else class_labels.to(logits.device, torch.long)

        counts = class_counts.to(logits.device, dtype)
        total = counts.sum()
        # An empty buffer has no common class: its frequency is 0, not 0/0. `where` picks
        # the branch without evaluating a division on the host.
        frequency = torch.where(total > 0, counts[counted] / total, torch.zeros_like(total))
        diversity = 1.0 - frequency
        difficulty = others.pow(g)
        return diversity * difficulty


class DiversityDifficultyModulator(nn.Module):
    """φ with its reading fixed: the one object :class:`~ssdkd.methods.SSDKD` and a user's
    loop both call.

    The defaults are SSD-KD's: p_T is the probability of the *target* label and the
    diversity factor reads the frequency of the target class, so a rare class the
    generator fails to produce keeps its weight. (With the teacher's maximum probability,
    an image the teacher confidently puts in the wrong class gets φ ≈ 0, switching off the
    task loss that would pull it towards its target.) ``confidence="max"`` and
    ``diversity_class="predicted"`` give the paper's literal reading, which needs no
    targets (SSD-KD uses it to rank stored images for eviction).

    Args:
        gamma: γ ≥ 0 (default 2, the focal-loss value; the paper does not publish its γ).
        confidence: ``"target"``: p_T is the probability of the target label;
            ``"max"``: the teacher's maximum probability.
        diversity_class: ``"target"``: the diversity factor reads the target class's
            frequency; ``"predicted"``: the teacher's class's.
        normalization: How :meth:`task_weights` scales φ for a task loss averaged with
            :func:`~ssdkd.losses.weighted_mean`: ``"weights"`` divides by mean φ, so the
            loss is Σφ·CE / Σφ and keeps its scale; ``"batch"`` leaves φ as is
            (Σφ·CE / B, smaller by mean φ).
        validate: Run the value checks (host synchronisation); see the function.

    Examples:
        >>> phi = DiversityDifficultyModulator(gamma=2.0)
        >>> logits, counts = torch.tensor([[0.0, 0.0]]), torch.tensor([0, 0])
        >>> phi(logits, counts, targets=torch.tensor([1]))  # empty buffer: 1 · 0.5²
        tensor([0.2500])
        >>> literal = DiversityDifficultyModulator(confidence="max", diversity_class="predicted")
        >>> literal(torch.tensor([[0.0, 2.0]]), torch.tensor([1, 1]))  # 0.5 · (1 − σ(2))²
        tensor([0.0071])
    """

    def __init__(
        self,
        gamma: float = 2.0,
        *,
        confidence: str = "target",
        diversity_class: str = "target",
        normalization: str = "weights",
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.gamma = check_number("gamma", gamma, minimum=0.0, inclusive=True)
        for name, value, choices in (
            ("confidence", confidence, ("target", "max")),
            ("diversity_class", diversity_class, ("target", "predicted")),
            ("normalization", normalization, ("weights", "batch")),
        ):
            if value not in choices:
                raise ValueError(f"Expected `{name}` to be one of {choices}, got {value!r}")
        self.confidence = confidence
        self.diversity_class = diversity_class
        self.normalization = normalization
        self.validate = bool(validate)

    @property
    def needs_targets(self) -> bool:
        """Whether this reading needs the target labels."""
        return self.confidence == "target" or self.diversity_class == "target"

    def forward(
        self, teacher_logits: Tensor, class_counts: Tensor, targets: Tensor | None = None
    ) -> Tensor:
        """φ of shape ``(B,)``; see :func:`diversity_difficulty_weights`.

        Raises:
            ValueError: ``targets`` missing for a reading that needs them, or given to one
                that would ignore them.
        """
        if self.needs_targets and targets is None:
            raise ValueError(
                f"Expected `targets` (confidence={self.confidence!r}, "
                f"diversity_class={self.diversity_class!r} read them), got None"
            )
        if not self.needs_targets and targets is not None:
            raise ValueError(
                "Expected no `targets` (confidence='max' and diversity_class='predicted' "
                "ignore them), got a tensor"
            )
        return diversity_difficulty_weights(
            teacher_logits,
            class_counts,
            gamma=self.gamma,
            targets=targets if self.confidence == "target" else None,
            class_labels=targets if self.diversity_class == "target" else None,
            validate=self.validate,
        )

    def task_weights(
        self, teacher_logits: Tensor, class_counts: Tensor, targets: Tensor | None = None
    ) -> Tensor:
        """φ scaled by ``normalization``: the per-sample weights of a task loss.

        Examples:
            >>> phi = DiversityDifficultyModulator(gamma=1.0)
            >>> logits = torch.tensor([[0.0, 0.0], [0.0, 4.0]])
            >>> w = phi.task_weights(logits, torch.tensor([1, 1]), torch.tensor([0, 1]))
            >>> w  # the confident sample gives its weight to the doubtful one; mean 1
            tensor([1.9306, 0.0694])
        """
        return self.normalize(self(teacher_logits, class_counts, targets))

    def normalize(self, phi: Tensor) -> Tensor:
        """φ ``(B,)`` scaled by ``normalization`` (see :meth:`task_weights`)."""
        if self.normalization == "batch":
            return phi
        # mean(φ'·CE) with φ' = φ / mean(φ) is Σ φ·CE / Σ φ: the task loss keeps its
        # published scale and φ only redistributes it over the batch.
        return phi / phi.mean().clamp_min(torch.finfo(phi.dtype).tiny)

    def extra_repr(self) -> str:
        return (
            f"gamma={self.gamma}, confidence={self.confidence!r}, "
            f"diversity_class={self.diversity_class!r}, normalization={self.normalization!r}"
        )

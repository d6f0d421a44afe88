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

    Example:
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
        confidence = probs.gather(1, label.unsqueeze(1)).squeeze(1)
        counted = predicted if class_labels is None else class_labels.to(logits.device, torch.long)

        counts = class_counts.to(logits.device, dtype)
        total = counts.sum()
        # An empty buffer has no common class: its frequency is 0, not 0/0. `where` picks
        # the branch without evaluating a division on the host.
        frequency = torch.where(total > 0, counts[counted] / total, torch.zeros_like(total))
        diversity = 1.0 - frequency
        # 1 − p can round to a tiny negative number only through misuse, but a fractional
        # power of a negative number is NaN, so clamp to keep φ ≥ 0 in every case.
        difficulty = (1.0 - confidence).clamp_min(0.0).pow(g)
        return diversity * difficulty


class DiversityDifficultyModulator(nn.Module):
    """Holds γ and the choice of p_T for :func:`diversity_difficulty_weights`.

    Args:
        gamma: γ ≥ 0 (default 2, the focal-loss value; the paper does not publish its γ).
        use_targets: Read p_T as the probability of the sampled target labels (then
            :meth:`forward` requires ``targets``) instead of the teacher's maximum
            probability (then ``targets`` must be omitted, so that none is ignored).
        validate: Run the value checks (host synchronisation); see the function.

    Example:
        >>> phi = DiversityDifficultyModulator(gamma=2.0)
        >>> phi(torch.tensor([[0.0, 0.0]]), torch.tensor([0, 0]))  # empty buffer: 1 · 0.5²
        tensor([0.2500])
        >>> phi_t = DiversityDifficultyModulator(gamma=1.0, use_targets=True)
        >>> phi_t(torch.tensor([[0.0, 2.0]]), torch.tensor([1, 1]), torch.tensor([0]))
        tensor([0.4404])
    """

    def __init__(
        self, gamma: float = 2.0, use_targets: bool = False, *, validate: bool = True
    ) -> None:
        super().__init__()
        self.gamma = check_number("gamma", gamma, minimum=0.0, inclusive=True)
        self.use_targets = bool(use_targets)
        self.validate = bool(validate)

    def forward(
        self, teacher_logits: Tensor, class_counts: Tensor, targets: Tensor | None = None
    ) -> Tensor:
        """φ of shape ``(B,)``; see :func:`diversity_difficulty_weights`."""
        if self.use_targets and targets is None:
            raise ValueError(
                "Expected `targets` (the modulator was built with use_targets=True), got None"
            )
        if not self.use_targets and targets is not None:
            raise ValueError(
                "Expected no `targets` (the modulator was built with use_targets=False), got "
                "a tensor; build it with use_targets=True to use them"
            )
        return diversity_difficulty_weights(
            teacher_logits,
            class_counts,
            gamma=self.gamma,
            targets=targets,
            validate=self.validate,
        )

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, use_targets={self.use_targets}"

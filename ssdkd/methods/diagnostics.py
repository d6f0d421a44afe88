"""Collapse diagnostics: how many classes a batch covers, and how varied each class is.

Mode collapse — the synthetic data covering only a few of the teacher's classes, or the
student predicting one class for almost every image — is the most common failure of
data-free distillation. These functions measure it from class labels alone, so they work
for teacher-labelled synthetic batches and for a student's predictions on real data alike.
:func:`within_class_diversity` measures the other collapse, within a class, from features.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "batch_diagnostics",
    "class_entropy",
    "counts_entropy",
    "top_class_share",
    "within_class_diversity",
]


def _check_labels(labels: Tensor, num_classes: int) -> None:
    if not isinstance(labels, Tensor):
        raise TypeError(f"Expected `labels` to be a torch.Tensor, got {type(labels).__name__}")
    if labels.dim() != 1 or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(
            f"Expected `labels` to be a 1-D integer tensor, got {labels.dtype} "
            f"{tuple(labels.shape)}"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"Expected `num_classes` to be an integer >= 2, got {num_classes!r}")


def class_entropy(labels: Tensor, num_classes: int) -> Tensor:
    """Normalised entropy of the class histogram of ``labels``, in [0, 1].

    H = −Σ_c q_c log q_c / log K with q_c the share of label c: 0 when every label is the
    same class (a collapsed batch), 1 when the K classes are equally frequent. An empty
    batch has entropy 0.

    Args:
        labels: ``(N,)`` integer class labels in ``[0, num_classes)``.
        num_classes: K ≥ 2.

    Returns:
        A 0-dim float32 tensor on the labels' device (no host synchronisation).

    Examples:
        >>> class_entropy(torch.tensor([3, 3, 3]), 10)
        tensor(0.)
        >>> class_entropy(torch.tensor([0, 1, 2, 3]), 4)
        tensor(1.)
    """
    _check_labels(labels, num_classes)
    return counts_entropy(torch.bincount(labels, minlength=num_classes)[:num_classes])


def counts_entropy(counts: Tensor) -> Tensor:
    """:func:`class_entropy` of a class histogram ``(K,)`` (e.g. summed over processes).

    Examples:
        >>> counts_entropy(torch.tensor([2, 2, 0, 0]))
        tensor(0.5000)
    """
    if counts.dim() != 1 or counts.shape[0] < 2:
        raise ValueError(f"Expected `counts` of shape (K,) with K >= 2, got {tuple(counts.shape)}")
    counts = counts.float()
    shares = counts / counts.sum().clamp_min(1.0)
    # 0 · log 0 = 0: the `where` keeps empty classes out of the sum.
    terms = torch.where(shares > 0, shares * shares.clamp_min(1e-30).log(), 0.0)
    # `+ 0.0` turns the −0.0 of a one-class batch into 0.0.
    return (-terms.sum() / math.log(counts.shape[0])).clamp(0.0, 1.0) + 0.0


def top_class_share(labels: Tensor, num_classes: int) -> Tensor:
    """Share of ``labels`` that fall into the most frequent class, in [1/K, 1].

    1.0 means one class for everything (a collapsed student); 1/K a perfectly even spread.
    An empty batch gives 0.

    Examples:
        >>> top_class_share(torch.tensor([5, 5, 5, 1]), 10)
        tensor(0.7500)
    """
    _check_labels(labels, num_classes)
    counts = torch.bincount(labels, minlength=num_classes)[:num_classes].float()
    return counts.max() / counts.sum().clamp_min(1.0)


def batch_diagnostics(teacher_logits: Tensor, targets: Tensor | None = None) -> dict[str, float]:
    """What a synthetic batch looks like to the teacher, as plain numbers for a round record.

    Reads the values back to the host once (call it once per round, not per step).

    Args:
        teacher_logits: ``(B, K)`` the teacher's logits on the batch.
        targets: Optional ``(B,)`` labels the batch was synthesised for.

    Returns:
        ``synth_class_entropy`` (:func:`class_entropy` of the teacher's classes),
        ``teacher_confidence`` (mean maximum softmax probability) and, with ``targets``,
        ``target_agreement`` (share of images whose teacher class is their target).

    Examples:
        >>> logits = torch.tensor([[4.0, 0.0], [4.0, 0.0]])
        >>> batch_diagnostics(logits, torch.tensor([0, 1]))["target_agreement"]
        0.5
    """
    with torch.no_grad():
        probs = teacher_logits.detach().float().softmax(dim=1)
        confidence, predicted = probs.max(dim=1)
        parts = [class_entropy(predicted, probs.shape[1]), confidence.mean()]
        if targets is not None:
            parts.append((predicted == targets.to(predicted.device)).float().mean())
        values = torch.stack(parts).tolist()
    names = ("synth_class_entropy", "teacher_confidence", "target_agreement")
    return dict(zip(names, values, strict=False))


def within_class_diversity(features: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Mean pairwise cosine distance of ``features`` within each class, averaged over classes.

    For the ``n_c`` feature vectors of class c (unit-normalised, f̂), the mean cosine
    similarity over distinct pairs is ``(‖Σ f̂‖² − n_c) / (n_c (n_c − 1))``; the diversity of
    the class is one minus it: 0 when every image of the class has the same features (a
    generator that collapsed within the class), about 1 for unrelated directions. Classes
    with fewer than two images are left out; with none left the result is 0. Computed in
    O(N·D), without the N × N similarity matrix.

    Args:
        features: ``(N, D)`` features, e.g. the teacher's penultimate layer.
        labels: ``(N,)`` integer classes (e.g. the teacher's) in ``[0, num_classes)``.
        num_classes: K ≥ 2.

    Examples:
        >>> f = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
        >>> within_class_diversity(f, torch.tensor([0, 0, 1, 1]), 2).item()
        0.5
    """
    _check_labels(labels, num_classes)
    if not isinstance(features, Tensor) or features.dim() != 2:
        shape = tuple(features.shape) if isinstance(features, Tensor) else type(features)
        raise ValueError(f"Expected `features` of shape (N, D), got {shape}")
    if features.shape[0] != labels.shape[0]:
        raise ValueError(
            f"Expected one label per feature row, got {features.shape[0]} rows and "
            f"{labels.shape[0]} labels"
        )
    unit = torch.nn.functional.normalize(features.double(), dim=1)
    sums = torch.zeros(num_classes, unit.shape[1], dtype=unit.dtype, device=unit.device)
    sums.index_add_(0, labels, unit)
    counts = torch.bincount(labels, minlength=num_classes).to(unit.dtype)
    pairs = counts * (counts - 1)
    similarity = (sums.pow(2).sum(dim=1) - counts) / pairs.clamp_min(1)
    used = pairs > 0
    diversity = torch.where(used, 1.0 - similarity, torch.zeros_like(similarity))
    return (diversity.sum() / used.sum().clamp_min(1)).to(features.dtype)

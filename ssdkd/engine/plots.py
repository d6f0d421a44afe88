"""PNG figures of a run: accuracy vs time, per-round diagnostics, synthetic samples, buffer
balance and difficulty.

Needs matplotlib (``pip install matplotlib``; in a clone of ssdkd,
``pip install -e ".[plot]"``). The inputs are the files a run directory holds:
``metrics.jsonl`` and ``synthetic.pt`` (a sample of the synthetic images with the
teacher's logits on them, written at the end of a run).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ssdkd.engine.checkpoint import load_checkpoint
from ssdkd.engine.records import read_metrics

__all__ = [
    "DIAGNOSTIC_PANELS",
    "LABELS",
    "X_AXES",
    "plot_accuracy_vs_time",
    "plot_buffer_histograms",
    "plot_diagnostics",
    "plot_run",
    "plot_samples",
    "teacher_accuracy_of",
]

DIAGNOSTIC_PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "class entropy (1 = balanced)",
        ("synth_class_entropy", "data_class_entropy", "eval_class_entropy"),
    ),
    (
        "teacher on the synthetic data",
        ("teacher_confidence", "target_agreement", "data_teacher_confidence"),
    ),
    ("KD loss", ("kd_loss", "kl")),
    ("SSD-KD weights", ("phi_mean", "weight_mean", "weight_ess")),
    ("student on evaluation data", ("accuracy", "eval_top_class_share")),
)
"""The panels of :func:`plot_diagnostics`: a title and the record keys drawn in it."""

LABELS: dict[str, str] = {
    "synth_class_entropy": "this round's synthetic batch",
    "data_class_entropy": "data the student learns from",
    "eval_class_entropy": "student's predictions",
    "teacher_confidence": "teacher's confidence",
    "target_agreement": "teacher agrees with the target",
    "data_teacher_confidence": "teacher's confidence, stored data",
    "kd_loss": "optimised loss",
    "kl": "KL·T², transfer-set mean",
    "phi_mean": "mean φ",
    "weight_mean": "mean importance weight",
    "weight_ess": "importance weights' ESS",
    "accuracy": "accuracy",
    "eval_top_class_share": "share of the top class",
}
"""The legend's words for each record key of :data:`DIAGNOSTIC_PANELS`."""

X_AXES: dict[str, tuple[str, str]] = {
    "seconds": ("overall_seconds", "overall time (s): synthesis + KD"),
    "round": ("round", "round"),
    "kd_steps": ("kd_steps", "KD steps"),
}
"""The x axes of :func:`plot_accuracy_vs_time`: record key and axis label."""


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Lay out ``fig``, write it to ``path`` as a PNG and free it."""
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    _pyplot().close(fig)
    return out


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(
            "plotting needs matplotlib: pip install matplotlib (in a clone of ssdkd: "
            'pip install -e ".[plot]")'
        ) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_samples(
    images: torch.Tensor,
    path: str | os.PathLike[str],
    *,
    teacher_logits: torch.Tensor | None = None,
    max_images: int = 64,
) -> Path:
    """Save a square grid of up to ``max_images`` images ``(N, C, H, W)`` in [0, 1].

    With ``teacher_logits`` ``(N, K)`` each image is titled with the teacher's class and
    its probability, e.g. ``3 0.97``.

    Raises:
        ValueError: ``teacher_logits`` is not ``(N, K)`` for the N images.
    """
    if teacher_logits is not None and (
        teacher_logits.dim() != 2 or teacher_logits.shape[0] != images.shape[0]
    ):
        raise ValueError(
            f"Expected `teacher_logits` of shape ({images.shape[0]}, K) for the "
            f"{images.shape[0]} images, got {tuple(teacher_logits.shape)}"
        )
    plt = _pyplot()
    shown = images[:max_images].detach().float().clamp(0, 1).cpu()
    count = shown.shape[0]
    titles: list[str] = []
    if teacher_logits is not None:
        probs = teacher_logits[:max_images].detach().float().softmax(dim=1).cpu()
        confidence, predicted = probs.max(dim=1)
        titles = [
            f"{c} {p:.2f}" for c, p in zip(predicted.tolist(), confidence.tolist(), strict=True)
        ]
    side = max(1, math.ceil(math.sqrt(count)))
    cell = 1.1 if titles else 0.9  # room for the titles
    fig, axes = plt.subplots(side, side, figsize=(side * 0.9, side * cell))
    for i, ax in enumerate(axes.flat if hasattr(axes, "flat") else [axes]):
        ax.axis("off")
        if i < count:
            image = shown[i]
            if image.shape[0] == 1:
                ax.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(image.permute(1, 2, 0).numpy())
            if titles:
                ax.set_title(titles[i], fontsize=6, pad=2)
    suffix = " (teacher's class and confidence)" if titles else ""
    fig.suptitle(f"{count} synthetic samples{suffix}")
    out = Path(path)
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out


def plot_buffer_histograms(
    teacher_logits: torch.Tensor, path: str | os.PathLike[str], *, num_classes: int | None = None
) -> Path:
    """Save the class histogram and the teacher-confidence histogram of synthetic data.

    The two panels of the SSD-KD paper's Fig. 2: how balanced the predicted classes are
    (diversity) and how confident the teacher is (difficulty: 1 − confidence).
    """
    plt = _pyplot()
    probs = teacher_logits.detach().float().softmax(dim=1).cpu()
    classes = num_classes or probs.shape[1]
    confidence, predicted = probs.max(dim=1)
    counts = torch.bincount(predicted, minlength=classes)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.bar(range(classes), counts.numpy())
    left.set_xlabel("teacher-predicted class")
    left.set_ylabel("images")
    left.set_title("class histogram")
    right.hist(confidence.numpy(), bins=20, range=(0, 1))
    right.set_xlabel("teacher confidence max p_t(x)")
    right.set_title("difficulty (low confidence = hard)")
    return _save(fig, path)


def plot_accuracy_vs_time(
    histories: Mapping[str, Sequence[dict[str, Any]]],
    path: str | os.PathLike[str],
    *,
    x: str = "seconds",
    teacher_accuracy: float | None = None,
) -> Path:
    """Save held-out accuracy, one line per run, against overall (synthesis + KD) seconds
    (``x="seconds"``), the round (``"round"``) or the KD steps (``"kd_steps"``): time
    shows the cost, and the rounds or steps read the same however loaded the machine
    was. ``teacher_accuracy`` draws the teacher's held-out accuracy as a dashed line.

    Raises:
        ValueError: An unknown ``x``.
    """
    if x not in X_AXES:
        raise ValueError(f"Expected `x` to be one of {list(X_AXES)}, got {x!r}")
    key, label_x = X_AXES[x]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for label, history in histories.items():
        points = [(r[key], r["accuracy"]) for r in history if r.get("accuracy") is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker=".", label=label)
    if teacher_accuracy is not None:
        ax.axhline(teacher_accuracy, color="gray", linestyle="--", label="teacher")
    ax.set_xlabel(label_x)
    ax.set_ylabel("held-out accuracy")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend()
    return _save(fig, path)


def _diagnostic_panels(
    history: Sequence[dict[str, Any]],
) -> list[tuple[str, list[tuple[str, list[int], list[float]]]]]:
    """The :data:`DIAGNOSTIC_PANELS` with data: ``(title, [(key, rounds, values)])``."""
    panels = []
    for title, keys in DIAGNOSTIC_PANELS:
        curves = []
        for key in keys:
            points = [(int(r["round"]), float(r[key])) for r in history if r.get(key) is not None]
            if key == "weight_mean" and all(abs(v - 1.0) < 1e-6 for _, v in points):
                continue  # 1 by construction under the "mean" normalisation: no information
            if points:
                rounds, values = zip(*points, strict=True)
                curves.append((key, list(rounds), list(values)))
        if curves:
            panels.append((title, curves))
    return panels


def plot_diagnostics(history: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Save the per-round diagnostics of a run against the round, one panel per group.

    Only the panels of :data:`DIAGNOSTIC_PANELS` whose keys the records hold are drawn
    (methods report different diagnostics): the class entropies of the synthetic batch,
    of the data the student learns from and of the student's predictions on the
    evaluation data; the teacher's confidence and target agreement on the round's batch;
    the optimised ``kd_loss`` against the unweighted ``kl``; SSD-KD's mean φ, mean
    importance weight (left out where it is 1 throughout, as the "mean" normalisation
    makes it) and the weights' effective sample size; the student's accuracy and
    top-class share on the evaluation data. Legends use :data:`LABELS`.

    Args:
        history: The run's records (:func:`~ssdkd.engine.records.read_metrics`).
        path: The PNG file to write.

    Raises:
        ValueError: No record holds any diagnostic key.
    """
    panels = _diagnostic_panels(history)
    if not panels:
        keys = sorted(key for _, group in DIAGNOSTIC_PANELS for key in group)
        raise ValueError(f"Expected records with at least one of the keys {keys}, got none")
    plt = _pyplot()
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    for ax, (title, curves) in zip(axes.flat, panels, strict=False):
        for key, rounds, values in curves:
            ax.plot(rounds, values, marker=".", label=LABELS.get(key, key))
        ax.set_title(title)
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    return _save(fig, path)


def teacher_accuracy_of(run_dir: str | os.PathLike[str]) -> float | None:
    """The teacher's held-out accuracy that ``ssdkd distill`` recorded in the run
    directory's ``command.json`` (``None`` where there is none)."""
    path = Path(run_dir) / "command.json"
    try:
        value = json.loads(path.read_text()).get("teacher_accuracy")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def plot_run(run_dir: str | os.PathLike[str], *, x: str = "seconds") -> list[Path]:
    """Write a run directory's figures into it and return their paths.

    ``accuracy.png`` always (against ``x``, see :func:`plot_accuracy_vs_time`, with the
    teacher's accuracy where ``ssdkd distill`` recorded it); ``diagnostics.png`` when the
    records hold diagnostics (see :func:`plot_diagnostics`); ``samples.png`` (labelled
    with the teacher's class and confidence) and ``buffer_histograms.png`` when the run
    wrote ``synthetic.pt``.

    Raises:
        FileNotFoundError: ``run_dir`` has no ``metrics.jsonl``.
    """
    directory = Path(run_dir)
    history = read_metrics(directory)
    written = [
        plot_accuracy_vs_time(
            {directory.name: history},
            directory / "accuracy.png",
            x=x,
            teacher_accuracy=teacher_accuracy_of(directory),
        )
    ]
    if _diagnostic_panels(history):
        written.append(plot_diagnostics(history, directory / "diagnostics.png"))
    synthetic = directory / "synthetic.pt"
    if synthetic.is_file():
        state = load_checkpoint(synthetic, kind="synthetic")
        written.append(
            plot_samples(
                state["images"], directory / "samples.png", teacher_logits=state["teacher_logits"]
            )
        )
        written.append(
            plot_buffer_histograms(
                state["teacher_logits"],
                directory / "buffer_histograms.png",
                num_classes=int(state["num_classes"]),
            )
        )
    return written

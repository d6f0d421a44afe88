"""PNG figures of a run: synthetic samples, buffer balance and difficulty, accuracy vs time.

Needs matplotlib (``pip install "ssdkd[plot]"``). The inputs are the files a run directory
holds: ``metrics.jsonl`` and ``synthetic.pt`` (a sample of the synthetic images with the
teacher's logits on them, written at the end of a run).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ssdkd.engine.checkpoint import load_checkpoint
from ssdkd.engine.records import read_metrics

__all__ = [
    "plot_accuracy_vs_time",
    "plot_buffer_histograms",
    "plot_run",
    "plot_samples",
]


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(
            'plotting needs matplotlib: pip install "ssdkd[plot]" (or pip install matplotlib)'
        ) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_samples(
    images: torch.Tensor, path: str | os.PathLike[str], *, max_images: int = 64
) -> Path:
    """Save a square grid of up to ``max_images`` images ``(N, C, H, W)`` in [0, 1]."""
    plt = _pyplot()
    shown = images[:max_images].detach().float().clamp(0, 1).cpu()
    count = shown.shape[0]
    side = max(1, math.ceil(math.sqrt(count)))
    fig, axes = plt.subplots(side, side, figsize=(side * 0.9, side * 0.9))
    for i, ax in enumerate(axes.flat if hasattr(axes, "flat") else [axes]):
        ax.axis("off")
        if i < count:
            image = shown[i]
            if image.shape[0] == 1:
                ax.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(image.permute(1, 2, 0).numpy())
    fig.suptitle(f"{count} synthetic samples")
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
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_accuracy_vs_time(
    histories: Mapping[str, Sequence[dict[str, Any]]], path: str | os.PathLike[str]
) -> Path:
    """Save held-out accuracy against overall (synthesis + KD) seconds, one line per run."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for label, history in histories.items():
        points = [
            (r["overall_seconds"], r["accuracy"]) for r in history if r.get("accuracy") is not None
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker=".", label=label)
    ax.set_xlabel("overall time (s): synthesis + KD")
    ax.set_ylabel("held-out accuracy")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend()
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_run(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``samples.png``, ``buffer_histograms.png`` and ``accuracy.png`` into ``run_dir``.

    Raises:
        FileNotFoundError: ``run_dir`` has no ``metrics.jsonl``.
    """
    directory = Path(run_dir)
    history = read_metrics(directory)
    written = [plot_accuracy_vs_time({directory.name: history}, directory / "accuracy.png")]
    synthetic = directory / "synthetic.pt"
    if synthetic.is_file():
        state = load_checkpoint(synthetic, kind="synthetic")
        written.append(plot_samples(state["images"], directory / "samples.png"))
        written.append(
            plot_buffer_histograms(
                state["teacher_logits"],
                directory / "buffer_histograms.png",
                num_classes=int(state["num_classes"]),
            )
        )
    return written

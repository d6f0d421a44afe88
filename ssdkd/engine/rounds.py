"""One round's records: step metrics read back in one transfer and summarised, evaluation,
and the reductions over ranks."""

from __future__ import annotations

from typing import Any

import torch

from ssdkd.engine.evaluation import evaluate_predictions
from ssdkd.methods import DistillationMethod
from ssdkd.methods.diagnostics import counts_entropy
from ssdkd.methods.parallel import DataParallel, shard_range

__all__ = [
    "check_eval_data",
    "check_unit_images",
    "evaluate",
    "mean_over_ranks",
    "read_steps",
    "summarize_steps",
    "summarize_synthesis",
]

_LAST_VALUE_STEP_METRICS = ("beta",)
"""Step metrics recorded as the round's last value instead of the mean over its steps: a
schedule's position, not a quantity measured on each step's batch."""


def read_steps(steps: list[dict[str, torch.Tensor | float]]) -> list[dict[str, float]]:
    """The steps' metrics as floats, with every tensor read back in one transfer."""
    tensors = [v for step in steps for v in step.values() if isinstance(v, torch.Tensor)]
    values = iter(torch.stack([t.float() for t in tensors]).tolist() if tensors else [])
    return [
        {k: next(values) if isinstance(v, torch.Tensor) else float(v) for k, v in step.items()}
        for step in steps
    ]


def summarize_steps(steps: list[dict[str, float]]) -> dict[str, float | None]:
    """One round's KD-step metrics: the mean over the applied (not skipped) steps.

    ``kd_loss`` is always present (``None`` in a round without applied steps); the other
    keys are those the method's steps returned, except ``skipped`` (counted by the caller
    as ``nonfinite_steps``) and the :data:`_LAST_VALUE_STEP_METRICS`, which keep the last
    step's value.
    """
    summary: dict[str, float | None] = {"kd_loss": None}
    applied = [step for step in steps if not step["skipped"]]
    for key in dict.fromkeys(key for step in steps for key in step):
        if key == "skipped":
            continue
        if key in _LAST_VALUE_STEP_METRICS:
            summary[key] = next(step[key] for step in reversed(steps) if key in step)
            continue
        # A skipped step's loss is NaN/inf: it stays out of the round's mean.
        values = [step[key] for step in applied if isinstance(step.get(key), (int, float))]
        summary[key] = sum(values) / len(values) if values else None
    return summary


def summarize_synthesis(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One round's synthesis metrics: each key's mean over the synthesis calls that
    reported a number for it (``None`` if none did; the record itself where the round
    made one call)."""
    if len(records) == 1:
        return records[0]
    summary: dict[str, Any] = {}
    for key in dict.fromkeys(key for record in records for key in record):
        values = [record[key] for record in records if isinstance(record.get(key), (int, float))]
        summary[key] = sum(values) / len(values) if values else None
    return summary


def evaluate(
    method: DistillationMethod, eval_data: tuple[torch.Tensor, torch.Tensor]
) -> dict[str, float]:
    """Accuracy and class-coverage diagnostics of the student, from one prediction pass.

    With several processes each rank predicts its :func:`shard_range` share of the images
    and the counts are summed, so every rank gets the numbers of the whole set.
    """
    parallel = method.parallel
    images, labels = eval_data
    start, stop = shard_range(labels.shape[0], parallel.rank, parallel.world_size)
    counts = torch.zeros(method.num_classes + 1, dtype=torch.long, device=method.device)
    if stop > start:
        predictions = evaluate_predictions(
            method.student,
            images[start:stop],
            device=method.device,
            normalize=(method.model_input.mean, method.model_input.std),
        )
        counts[: method.num_classes] = torch.bincount(predictions, minlength=method.num_classes)[
            : method.num_classes
        ]
        counts[-1] = (predictions == labels[start:stop].to(predictions.device)).sum()
    counts = parallel.sum(counts)
    histogram = counts[: method.num_classes].float()
    correct, top_share, entropy = torch.stack(
        [
            counts[-1].float(),
            histogram.max() / histogram.sum().clamp_min(1.0),
            counts_entropy(histogram),
        ]
    ).tolist()
    return {
        "accuracy": int(correct) / labels.shape[0],
        "eval_top_class_share": top_share,
        "eval_class_entropy": entropy,
    }


def mean_over_ranks(
    parallel: DataParallel,
    values: dict[str, Any],
    device: torch.device,
    sums: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Numeric values averaged over the ranks (those named in ``sums``: summed), in one
    collective; ``None`` where no rank has a number. Other values stay this rank's."""
    if not parallel.active:
        return values
    keys = sorted(k for k, v in values.items() if v is None or isinstance(v, (int, float)))
    present = [isinstance(values[k], (int, float)) for k in keys]
    numbers = [float(values[k]) if ok else 0.0 for k, ok in zip(keys, present, strict=True)]
    reduced = parallel.sum(
        torch.tensor([*numbers, *map(float, present)], dtype=torch.float64, device=device)
    )
    totals, counts = reduced[: len(keys)].tolist(), reduced[len(keys) :].tolist()
    out = dict(values)
    for key, total, count in zip(keys, totals, counts, strict=True):
        out[key] = None if count == 0 else total if key in sums else total / count
    return out


def check_eval_data(eval_data: tuple[torch.Tensor, torch.Tensor] | None) -> None:
    if eval_data is None:
        return
    if (
        not isinstance(eval_data, tuple)
        or len(eval_data) != 2
        or not all(isinstance(part, torch.Tensor) for part in eval_data)
    ):
        raise TypeError(
            f"Expected `eval_data` to be a tuple (images, labels) of tensors, got {eval_data!r}"
        )
    images, labels = eval_data
    if images.dim() != 4 or labels.dim() != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            "Expected `eval_data` as images (N, C, H, W) and labels (N,), got shapes "
            f"{tuple(images.shape)} and {tuple(labels.shape)}"
        )
    if labels.shape[0] == 0:
        raise ValueError("Expected `eval_data` with at least one image, got none")
    check_unit_images("eval_data", images)


def check_unit_images(name: str, images: torch.Tensor) -> None:
    """Refuse images that are not floating point in [0, 1] (one read of their range).

    Raises:
        ValueError: Integer images (e.g. uint8 0–255) or values outside [0, 1].
    """
    if not images.is_floating_point():
        raise ValueError(
            f"Expected `{name}` images as floats in [0, 1], got dtype {images.dtype} "
            "(0-255 pixels: divide by 255)"
        )
    low, high = torch.stack([images.min(), images.max()]).tolist()
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"Expected `{name}` images in [0, 1] (the reference methods normalise them with "
            f"`normalization`), got values in [{low:.4g}, {high:.4g}]"
        )

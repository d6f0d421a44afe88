"""The final student of a run as a file of its own: weights plus what rebuilds it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from ssdkd.engine.checkpoint import CheckpointError, atomic_save, load_checkpoint

__all__ = ["load_student", "save_student"]

_FIELDS = ("num_classes", "image_shape", "mean", "std", "student_model")


def save_student(
    path: Path,
    student: nn.Module,
    *,
    round_number: int,
    accuracy: float | None,
    run: dict[str, Any],
) -> None:
    """Write ``student``'s state dict with the run's final round, its held-out accuracy,
    and from ``run`` (the run's config record) the input it takes (``num_classes``,
    ``image_shape``, ``mean``, ``std``) and, where the run recorded it, the
    :data:`~ssdkd.models.MODELS` name that builds it (``student_model``)."""
    atomic_save(
        {
            "kind": "student",
            "round": round_number,
            "accuracy": accuracy,
            "state_dict": student.state_dict(),
            **{key: run.get(key) for key in _FIELDS},
        },
        path,
    )


def load_student(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The network of a run's ``student.pt``, rebuilt and loaded, in eval mode, on the CPU.

    Returns:
        The network and the file's metadata (``round``, ``accuracy``, ``num_classes``,
        ``image_shape``, ``mean``, ``std``, ``student_model``). It takes images
        normalised as ``(x − mean) / std``.

    Raises:
        CheckpointError: The file is missing, corrupt or not a final student, or it does
            not name a model of :data:`~ssdkd.models.MODELS` (a student built by the
            caller's own code: load its ``state_dict`` into that network instead).
    """
    from ssdkd.models import MODELS, create_model

    stored = load_checkpoint(path, kind="student")
    name = stored.get("student_model")
    if name not in MODELS:
        raise CheckpointError(
            f"student file {str(path)!r} names no model of ssdkd.models.MODELS (it holds "
            f"{name!r}): build the network yourself and load the file's 'state_dict' into it"
        )
    channels, size, _ = stored["image_shape"]
    model = create_model(
        name,
        num_classes=int(stored["num_classes"]),
        in_channels=int(channels),
        image_size=int(size),
    )
    model.load_state_dict(stored["state_dict"])
    return model.eval(), {k: v for k, v in stored.items() if k not in ("state_dict", "kind")}

"""Atomic checkpoint files that load with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["CheckpointError", "atomic_save", "load_checkpoint", "module_fingerprint"]


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, corrupt or of an unexpected kind."""


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``obj`` with :func:`torch.save` so that ``path`` is never half-written.

    The data goes to a temporary file in the same directory, is flushed and fsynced, and
    then renamed over ``path`` (an atomic operation on POSIX file systems). A crash at any
    moment leaves either the previous file or the new one, never a mixture.

    Args:
        obj: Tensors, numbers, strings and containers of them (what ``weights_only``
            loading accepts).
        path: Destination file; its parent directories are created.

    Returns:
        The destination as a :class:`~pathlib.Path`.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_directory(dest.parent)
    return dest


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX; a no-op where directories cannot be
    opened)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def module_fingerprint(module: torch.nn.Module, *, weights: bool) -> str:
    """A short hash of ``module``'s architecture (names, shapes, dtypes of its state) and,
    with ``weights``, of the values too; used to refuse resuming with another network.

    Examples:
        >>> a, b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
        >>> module_fingerprint(a, weights=False) == module_fingerprint(b, weights=False)
        True
        >>> module_fingerprint(a, weights=True) == module_fingerprint(b, weights=True)
        False
    """
    digest = hashlib.sha256(type(module).__name__.encode())
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        if weights:
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()[:16]


def load_checkpoint(path: str | os.PathLike[str], *, kind: str | None = None) -> dict[str, Any]:
    """Load a checkpoint written by :func:`atomic_save` with ``weights_only=True``.

    Args:
        path: The checkpoint file.
        kind: If given, the checkpoint's ``"kind"`` entry must equal it (for example
            ``"teacher"`` or ``"run"``), so that a wrong file gives a clear error.

    Returns:
        The stored dictionary (tensors are loaded on the CPU).

    Raises:
        CheckpointError: The file is missing, unreadable (truncated or corrupt), not a
            dictionary, or of another kind. The message names the file.
    """
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"checkpoint file {str(file)!r} does not exist")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        # torch's message runs to several lines of advice (some of it unsafe: loading
        # with weights_only=False); its first sentence says what failed.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = first.split(". ")[0].rstrip(".")
        raise CheckpointError(
            f"checkpoint file {str(file)!r} is truncated, corrupt or not a checkpoint and "
            f"cannot be loaded ({reason})"
        ) from exc
    if not isinstance(state, dict):
        raise CheckpointError(
            f"checkpoint file {str(file)!r} holds a {type(state).__name__}, expected a dict"
        )
    if kind is not None and state.get("kind") != kind:
        raise CheckpointError(
            f"checkpoint file {str(file)!r} is of kind {state.get('kind')!r}, expected {kind!r}"
        )
    return state

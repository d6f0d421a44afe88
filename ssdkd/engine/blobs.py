"""Checkpoints whose large tensors are stored once, by content, beside the checkpoint file.

A method's state holds data that mostly does not change between two checkpoints: a
transfer pool that only grows keeps every earlier image as it was. Written inside the
checkpoint file, all of it is rewritten every round (hundreds of megabytes for a
CIFAR-sized pool). Here every tensor of at least :data:`BLOB_MIN_BYTES` is written to
its own file in a blob directory, named by a digest of its dtype, shape and bytes, and
the checkpoint holds the digest in its place: a tensor already written under that name is
not written again. A state that splits a large, growing tensor into fixed blocks (as
:class:`~ssdkd.methods.common.TransferPool` does) therefore writes only its new blocks.

Each blob is written atomically before the checkpoint that names it, and a blob is
deleted only once no current checkpoint names it, so a crash at any moment leaves a
checkpoint whose blobs are all present.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from ssdkd.engine.checkpoint import CheckpointError, atomic_save, load_checkpoint

__all__ = [
    "BLOB_MIN_BYTES",
    "load_with_blobs",
    "remove_unreferenced_blobs",
    "save_with_blobs",
]

BLOB_MIN_BYTES = 1 << 20
"""Tensors of at least this many bytes (1 MiB) are stored as blobs."""

_REF = "__blob__"


def _digest(tensor: torch.Tensor) -> str:
    digest = hashlib.blake2b(f"{tensor.dtype}:{tuple(tensor.shape)};".encode(), digest_size=20)
    digest.update(tensor.detach().contiguous().view(-1).view(torch.uint8).cpu().numpy().data)
    return digest.hexdigest()


def _externalize(value: Any, blob_dir: Path, referenced: set[str]) -> Any:
    if isinstance(value, torch.Tensor) and value.numel() * value.element_size() >= BLOB_MIN_BYTES:
        name = _digest(value)
        if name not in referenced and not (blob_dir / f"{name}.pt").exists():
            # A copy: torch.save of a view would write its whole storage.
            atomic_save(value.detach().cpu().clone(), blob_dir / f"{name}.pt")
        referenced.add(name)
        return {_REF: name}
    if isinstance(value, dict):
        return {key: _externalize(item, blob_dir, referenced) for key, item in value.items()}
    if isinstance(value, list):
        return [_externalize(item, blob_dir, referenced) for item in value]
    if isinstance(value, tuple):
        return tuple(_externalize(item, blob_dir, referenced) for item in value)
    return value


def save_with_blobs(state: dict[str, Any], path: Path, blob_dir: Path) -> set[str]:
    """Write ``state`` to ``path`` atomically, its large tensors as blobs in ``blob_dir``.

    Returns:
        The names of the blobs the written checkpoint refers to.
    """
    referenced: set[str] = set()
    atomic_save(_externalize(state, blob_dir, referenced), path)
    return referenced


def _internalize(value: Any, blob_dir: Path, path: Path) -> Any:
    if isinstance(value, dict):
        if set(value) == {_REF}:
            blob = blob_dir / f"{value[_REF]}.pt"
            if not blob.is_file():
                raise CheckpointError(
                    f"checkpoint file {str(path)!r} refers to blob {str(blob)!r}, which does "
                    "not exist"
                )
            try:
                return torch.load(blob, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise CheckpointError(
                    f"blob {str(blob)!r} of checkpoint file {str(path)!r} is truncated or "
                    f"corrupt: {exc}"
                ) from exc
        return {key: _internalize(item, blob_dir, path) for key, item in value.items()}
    if isinstance(value, list):
        return [_internalize(item, blob_dir, path) for item in value]
    if isinstance(value, tuple):
        return tuple(_internalize(item, blob_dir, path) for item in value)
    return value


def load_with_blobs(path: Path, blob_dir: Path, *, kind: str) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_with_blobs`, its blobs put back in place.

    Raises:
        CheckpointError: The file or one of its blobs is missing, truncated or corrupt,
            or the file is of another kind; the message names the file.
    """
    state = load_checkpoint(path, kind=kind)
    resolved: dict[str, Any] = _internalize(state, blob_dir, path)
    return resolved


def remove_unreferenced_blobs(blob_dir: Path, referenced: set[str]) -> None:
    """Delete the blobs of ``blob_dir`` not in ``referenced``, and files a crash left
    mid-write."""
    if not blob_dir.is_dir():
        return
    for blob in blob_dir.iterdir():
        if blob.name.startswith(".") or blob.name.removesuffix(".pt") not in referenced:
            blob.unlink(missing_ok=True)

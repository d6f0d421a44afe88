"""Schemas and validation of the sampling components' state dicts (checked before any write)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

SCHEMA_VERSION = 1
"""Version of the state layout; bump it when keys or their meaning change."""

_SAMPLER_KEYS = (
    "alpha",
    "beta",
    "eps",
    "weight_norm",
    "stratified",
    "size",
    "raw_priorities",
    "leaves",
    "generator_state",
)
_STORAGE_KEYS = ("size", "cursor", "fields", "generations")
_KEYS = ("schema_version", "capacity", *dict.fromkeys(_SAMPLER_KEYS + _STORAGE_KEYS))
"""A buffer's state: the version, the capacity, and its sampler's and storage's keys."""


def check_state(state: Any, capacity: int, generator: torch.Generator) -> None:
    """Raise ``ValueError`` unless ``state`` is a loadable buffer state of ``capacity``
    whose generator state fits ``generator``."""
    _check_keys(state, _KEYS)
    if state["schema_version"] != SCHEMA_VERSION:
        raise ValueError(
            f"Expected `state['schema_version']` == {SCHEMA_VERSION}, "
            f"got {state['schema_version']!r}"
        )
    if state["capacity"] != capacity:
        raise ValueError(
            f"Expected `state['capacity']` == {capacity} (this buffer's capacity), "
            f"got {state['capacity']!r}"
        )
    check_storage_state(state, capacity)
    check_sampler_state(state, capacity, generator)


def check_storage_state(state: Any, capacity: int) -> None:
    """Raise ``ValueError`` unless ``state`` is a loadable :class:`FieldStorage` state."""
    _check_keys(state, _STORAGE_KEYS)
    size, cursor = state["size"], state["cursor"]
    if not isinstance(size, int) or not 0 <= size <= capacity:
        raise ValueError(f"Expected `state['size']` in [0, {capacity}], got {size!r}")
    if not isinstance(cursor, int) or not 0 <= cursor < capacity:
        raise ValueError(f"Expected `state['cursor']` in [0, {capacity}), got {cursor!r}")
    fields = state["fields"]
    if not isinstance(fields, dict) or not all(
        isinstance(v, Tensor) and v.dim() >= 1 and v.shape[0] == capacity for v in fields.values()
    ):
        raise ValueError(
            f"Expected `state['fields']` to map names to tensors of leading size {capacity}"
        )
    if size and not fields:
        raise ValueError(f"Expected stored fields for size {size}, got none")
    _vector(state, "generations", capacity, floating=False)


def check_sampler_state(state: Any, capacity: int, generator: torch.Generator) -> None:
    """Raise ``ValueError`` unless ``state`` is a loadable :class:`PrioritySampler` state
    for a sampler of ``capacity`` drawing from ``generator``."""
    _check_keys(state, _SAMPLER_KEYS)
    for key in ("alpha", "beta"):
        value = state[key]
        if not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"Expected `state[{key!r}]` in [0, 1], got {value!r}")
    eps = state["eps"]
    if not isinstance(eps, (int, float)) or not 0 < eps < math.inf:
        raise ValueError(f"Expected `state['eps']` to be a finite float > 0, got {eps!r}")
    if state["weight_norm"] not in ("max", "batch", "mean"):
        raise ValueError(
            "Expected `state['weight_norm']` in ('max', 'batch', 'mean'), "
            f"got {state['weight_norm']!r}"
        )
    size = state["size"]
    if not isinstance(size, int) or not 0 <= size <= capacity:
        raise ValueError(f"Expected `state['size']` in [0, {capacity}], got {size!r}")
    raw = _vector(state, "raw_priorities", capacity, floating=True)
    if not bool(((raw >= 0) & (raw < math.inf)).all()):
        raise ValueError("Expected `state['raw_priorities']` to be finite and >= 0")
    leaves = _vector(state, "leaves", capacity, floating=True)
    if not bool(((leaves >= 0) & (leaves < math.inf)).all()):
        raise ValueError("Expected `state['leaves']` to be finite and >= 0")
    gen_state = state["generator_state"]
    if not isinstance(gen_state, Tensor) or gen_state.dtype != torch.uint8:
        raise ValueError("Expected `state['generator_state']` to be a uint8 tensor")
    expected = generator.get_state().numel()
    if gen_state.numel() != expected:
        raise ValueError(
            f"Expected `state['generator_state']` of {expected} bytes (a {generator.device.type} "
            f"generator's state), got {gen_state.numel()}"
        )


def _check_keys(state: Any, keys: tuple[str, ...]) -> None:
    if not isinstance(state, dict):
        raise ValueError(f"Expected `state` to be a dict, got {type(state).__name__}")
    missing = [key for key in keys if key not in state]
    if missing:
        raise ValueError(f"Expected `state` to have keys {list(keys)}, missing {missing}")


def _vector(state: dict[str, Any], key: str, capacity: int, *, floating: bool) -> Tensor:
    value = state[key]
    if (
        not isinstance(value, Tensor)
        or tuple(value.shape) != (capacity,)
        or value.dtype.is_floating_point != floating
    ):
        kind = "float" if floating else "integer"
        raise ValueError(
            f"Expected `state[{key!r}]` to be a {kind} tensor of shape ({capacity},), got "
            f"{value.dtype if isinstance(value, Tensor) else type(value).__name__} "
            f"{tuple(value.shape) if isinstance(value, Tensor) else ''}".rstrip()
        )
    return value

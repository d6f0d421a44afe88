"""The few array operations whose spelling differs between numpy and torch.

Every hot path of :mod:`ssdkd.sampling` is written once, against an :class:`ArrayOps`.
Arithmetic, comparisons, slicing and fancy-index assignment are spelled the same for
numpy arrays and torch tensors and are used directly; everything else goes through the
ops object.

On CPU the arrays are numpy views of the same memory as the components' torch tensors
(a numpy call on a few hundred elements costs well under a microsecond, a torch call a
few), on any other device they are the tensors themselves, with no host synchronisation
except where a method says so.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

_NUMPY_DTYPES = {
    torch.float16: np.float16,
    torch.float32: np.float32,
    torch.float64: np.float64,
}

Array = Any
"""A numpy array (:data:`NUMPY`) or a torch tensor (the torch ops), up to 2-D."""


class ArrayOps(Protocol):
    """Operations on the arrays of one backend (see the module docstring)."""

    name: str
    may_sync: bool
    """Whether reading a value on the host is free (numpy) rather than a device sync."""

    def view(self, tensor: Tensor) -> Array:
        """The backend's array sharing ``tensor``'s memory."""
        ...

    def tensor(self, array: Array) -> Tensor:
        """A tensor sharing ``array``'s memory."""
        ...

    def tensor_as(self, array: Array, dtype: torch.dtype) -> Tensor:
        """A tensor of ``array``'s values in ``dtype``."""
        ...

    def take(self, array: Array, index: Array, axis: int = 0) -> Array:
        """The entries of ``array`` at ``index`` along ``axis``."""
        ...

    def searchsorted_right(self, sorted_values: Array, values: Array) -> Array:
        """For each value, the number of entries of ``sorted_values`` that are ≤ it."""
        ...

    def prefix_sums_(self, values: Array, out: Array) -> Array:
        """Write the inclusive prefix sums of ``values`` to ``out[1:]`` (``out[0]`` stays 0).

        The result is monotone and repeats the previous entry exactly after a zero value
        (a zero-mass node can then never be chosen): true of a sequential scan, and forced
        after a parallel one.
        """
        ...

    def sort(self, array: Array) -> Array:
        """Ascending copy of a 1-D array."""
        ...

    def argsort(self, array: Array) -> Array:
        """The positions that sort a 1-D array (int64)."""
        ...

    def scatter(self, positions: Array, values: Array) -> Array:
        """A new array ``out`` with ``out[positions] = values`` (``positions`` a permutation)."""
        ...

    def arange(self, n: int) -> Array:
        """``0, 1, ..., n - 1`` as int64."""
        ...

    def repeat(self, value: Array | float, n: int) -> Array:
        """``n`` copies of a float or 0-dim value, float64 (possibly a read-only view)."""
        ...

    def where(self, condition: Array, a: Array, b: Array) -> Array:
        """Element-wise ``a if condition else b``."""
        ...

    def minimum(self, a: Array, b: Array) -> Array:
        """Element-wise minimum of two arrays."""
        ...

    def maximum(self, a: Array, b: Array) -> Array:
        """Element-wise maximum of two arrays."""
        ...

    def below(self, value: Array) -> Array:
        """The largest float64 strictly below ``value`` (a 0-dim array)."""
        ...

    def any(self, mask: Array) -> bool:
        """Whether any entry is true (a host sync on CUDA)."""
        ...


class _NumpyOps:
    name = "numpy"
    may_sync = True

    def view(self, tensor: Tensor) -> Array:
        return tensor.numpy()

    def tensor(self, array: Array) -> Tensor:
        return torch.from_numpy(array)

    def tensor_as(self, array: Array, dtype: torch.dtype) -> Tensor:
        if dtype in _NUMPY_DTYPES:  # a numpy cast costs less than a torch one
            return torch.from_numpy(array.astype(_NUMPY_DTYPES[dtype], copy=False))
        return torch.from_numpy(array).to(dtype)

    def take(self, array: Array, index: Array, axis: int = 0) -> Array:
        return array.take(index, axis=axis)

    def searchsorted_right(self, sorted_values: Array, values: Array) -> Array:
        return sorted_values.searchsorted(values, side="right")

    def prefix_sums_(self, values: Array, out: Array) -> Array:
        # torch's CPU cumsum is the same sequential float64 scan as numpy's, bit for bit,
        # and about 3x faster on the top row's 8192 values (numpy 2.4, torch 2.13).
        torch.cumsum(torch.from_numpy(values), 0, out=torch.from_numpy(out[1:]))
        return out

    def sort(self, array: Array) -> Array:
        return np.sort(array)

    def argsort(self, array: Array) -> Array:
        return array.argsort()

    def scatter(self, positions: Array, values: Array) -> Array:
        out = np.empty_like(values)
        out[positions] = values
        return out

    def arange(self, n: int) -> Array:
        return np.arange(n, dtype=np.int64)

    def repeat(self, value: Array | float, n: int) -> Array:
        return np.full(n, value, dtype=np.float64)

    def where(self, condition: Array, a: Array, b: Array) -> Array:
        return np.where(condition, a, b)

    def minimum(self, a: Array, b: Array) -> Array:
        return np.minimum(a, b)

    def maximum(self, a: Array, b: Array) -> Array:
        return np.maximum(a, b)

    def below(self, value: Array) -> Array:
        return np.nextafter(value, -np.inf)

    def any(self, mask: Array) -> bool:
        return bool(mask.any())


class _TorchOps:
    name = "torch"
    may_sync = False

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def view(self, tensor: Tensor) -> Array:
        return tensor

    def tensor(self, array: Array) -> Tensor:
        return array

    def tensor_as(self, array: Array, dtype: torch.dtype) -> Tensor:
        return array.to(dtype)

    def take(self, array: Array, index: Array, axis: int = 0) -> Array:
        return array.index_select(axis, index)

    def searchsorted_right(self, sorted_values: Array, values: Array) -> Array:
        return torch.searchsorted(sorted_values, values, right=True)

    def prefix_sums_(self, values: Array, out: Array) -> Array:
        scan = values.cumsum(0)
        # A parallel scan need not be monotone after rounding: force it, letting a
        # zero-mass node repeat its predecessor's prefix.
        out[1:] = torch.where(values > 0, scan, 0.0).cummax(0).values
        return out

    def sort(self, array: Array) -> Array:
        return torch.sort(array).values

    def argsort(self, array: Array) -> Array:
        return torch.argsort(array)

    def scatter(self, positions: Array, values: Array) -> Array:
        return torch.empty_like(values).index_copy_(0, positions, values)

    def arange(self, n: int) -> Array:
        return torch.arange(n, device=self.device)

    def repeat(self, value: Array | float, n: int) -> Array:
        if isinstance(value, Tensor):
            return value.to(torch.float64).expand(n)  # a view: no copy, no host read
        return torch.full((n,), value, dtype=torch.float64, device=self.device)

    def where(self, condition: Array, a: Array, b: Array) -> Array:
        return torch.where(condition, a, b)

    def minimum(self, a: Array, b: Array) -> Array:
        return torch.minimum(a, b)

    def maximum(self, a: Array, b: Array) -> Array:
        return torch.maximum(a, b)

    def below(self, value: Array) -> Array:
        # full_like, not new_tensor: a new_tensor on CUDA copies from the host (a sync).
        return torch.nextafter(value, torch.full_like(value, float("-inf")))

    def any(self, mask: Array) -> bool:
        return bool(mask.any())


NUMPY: ArrayOps = _NumpyOps()


def ops_for(device: torch.device, *, host: bool | None = None) -> ArrayOps:
    """numpy on CPU, torch elsewhere; ``host=False`` forces torch on CPU (used by tests to
    run the device code path on CPU tensors)."""
    if host is None:
        host = device.type == "cpu"
    if host and device.type != "cpu":
        raise ValueError(f"Expected a CPU device for numpy arrays, got {device}")
    return NUMPY if host else _TorchOps(device)

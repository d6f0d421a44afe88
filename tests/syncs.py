"""Catch host reads of tensor values (device synchronisations on CUDA) in ssdkd's code."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch

READS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__")
"""The ``Tensor`` methods that copy a value to the host (a sync on CUDA)."""


class HostReadError(AssertionError):
    """A tensor's value was read back to the host where no read is allowed."""


def _guard(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    def read(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        # torch's own Python code reads host-side scalars (e.g. Adam's step counter, a
        # CPU tensor); on CUDA, `torch.cuda.set_sync_debug_mode("error")` covers those.
        if caller == "torch" or caller.startswith("torch."):
            return original(self, *args, **kwargs)
        raise HostReadError(f"Tensor.{name} called from {caller}")

    return read


@contextlib.contextmanager
def no_host_reads() -> Iterator[None]:
    """Raise :class:`HostReadError` when code outside torch reads a tensor's value.

    On CPU this patches the reading methods of ``torch.Tensor`` (:data:`READS`); on CUDA
    it also turns on ``torch.cuda.set_sync_debug_mode("error")``.
    """
    originals = {name: getattr(torch.Tensor, name) for name in READS}
    cuda = torch.cuda.is_available()
    try:
        for name, original in originals.items():
            setattr(torch.Tensor, name, _guard(name, original))
        if cuda:
            torch.cuda.set_sync_debug_mode("error")
        yield
    finally:
        if cuda:
            torch.cuda.set_sync_debug_mode("default")
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)

"""ssdkd: data-free knowledge distillation components for PyTorch.

The subpackages hold the pieces (:mod:`ssdkd.hooks`, :mod:`ssdkd.losses`,
:mod:`ssdkd.sampling`, :mod:`ssdkd.generators`), the reference methods
(:mod:`ssdkd.methods`), models and data, and the run engine (:mod:`ssdkd.engine`);
:func:`distill` runs a method end to end.

Importing a component package (``from ssdkd.sampling import PriorityBuffer``) loads that
component and what it builds on, never the engine, the methods, the models or the data:
``ssdkd.distill`` is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ssdkd.engine.distill import distill

__version__ = "0.1.0"

__all__ = ["__version__", "distill"]


def __getattr__(name: str) -> Any:
    """Import :func:`ssdkd.distill` (and with it the engine) when it is first used."""
    if name == "distill":
        from ssdkd.engine.distill import distill

        return distill
    raise AttributeError(f"module 'ssdkd' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "distill"])

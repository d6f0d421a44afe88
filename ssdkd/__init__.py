"""ssdkd: data-free knowledge distillation components for PyTorch.

The subpackages hold the pieces (:mod:`ssdkd.hooks`, :mod:`ssdkd.losses`,
:mod:`ssdkd.sampling`, :mod:`ssdkd.generators`), the reference methods
(:mod:`ssdkd.methods`), models and data, and the run engine (:mod:`ssdkd.engine`);
:func:`distill` runs a method end to end.
"""

from __future__ import annotations

from ssdkd.engine.distill import distill

__version__ = "0.1.0"

__all__ = ["__version__", "distill"]

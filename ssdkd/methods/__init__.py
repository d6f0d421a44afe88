"""Reference methods composed from the components: DeepInversion, Fast-DFKD, SSD-KD.

Each method is a frozen config dataclass (published defaults) and a class with two steps,
:meth:`~ssdkd.methods.base.DistillationMethod.synthesize` and
:meth:`~ssdkd.methods.base.DistillationMethod.distill_step`; the run engine owns the loop.
``METHODS`` maps the command-line names to (method class, default config).
"""

from __future__ import annotations

from ssdkd.methods.base import DistillationMethod, PoolMethod
from ssdkd.methods.config import (
    DEEPINVERSION_DIGITS,
    FAST2,
    FAST2_DIGITS,
    FAST5,
    FAST10,
    SSDKD_DIGITS,
    DeepInversionConfig,
    FastDFKDConfig,
    MethodConfig,
    NoiseControlConfig,
    SSDKDConfig,
    config_from_dict,
    config_to_dict,
)
from ssdkd.methods.deepinversion import DeepInversion
from ssdkd.methods.fast_dfkd import FastDFKD
from ssdkd.methods.noise import NoiseControl
from ssdkd.methods.precision import PRECISIONS, Precision
from ssdkd.methods.ssd_kd import SSDKD

METHODS: dict[str, tuple[type[DistillationMethod], MethodConfig]] = {
    "ssd-kd": (SSDKD, SSDKDConfig()),
    "fast-dfkd": (FastDFKD, FAST2),
    "deepinversion": (DeepInversion, DeepInversionConfig()),
    "noise-control": (NoiseControl, NoiseControlConfig()),
}
"""Method name → (class, published default config)."""

__all__ = [
    "DEEPINVERSION_DIGITS",
    "FAST2",
    "FAST2_DIGITS",
    "FAST5",
    "FAST10",
    "METHODS",
    "PRECISIONS",
    "SSDKD",
    "SSDKD_DIGITS",
    "DeepInversion",
    "DeepInversionConfig",
    "DistillationMethod",
    "FastDFKD",
    "FastDFKDConfig",
    "MethodConfig",
    "NoiseControl",
    "NoiseControlConfig",
    "PoolMethod",
    "Precision",
    "SSDKDConfig",
    "config_from_dict",
    "config_to_dict",
]

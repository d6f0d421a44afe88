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
    DEEPINVERSION_FASHION_MNIST,
    FAST2,
    FAST2_DIGITS,
    FAST2_FASHION_MNIST,
    FAST5,
    FAST5_DIGITS,
    FAST5_FASHION_MNIST,
    FAST10,
    SSDKD_DIGITS,
    SSDKD_FASHION_MNIST,
    DeepInversionConfig,
    FastDFKDConfig,
    MethodConfig,
    NoiseControlConfig,
    SSDKDConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    noise_control_for,
)
from ssdkd.methods.deepinversion import DeepInversion
from ssdkd.methods.fast_dfkd import FastDFKD
from ssdkd.methods.noise import NoiseControl
from ssdkd.methods.precision import PRECISIONS, NonFiniteLossError, Precision
from ssdkd.methods.ssd_kd import SSDKD

METHODS: dict[str, tuple[type[DistillationMethod], MethodConfig]] = {
    "ssd-kd": (SSDKD, SSDKDConfig()),
    "fast-dfkd": (FastDFKD, FAST2),
    "deepinversion": (DeepInversion, DeepInversionConfig()),
    "noise-control": (NoiseControl, NoiseControlConfig()),
}
"""Method name → (class, published default config)."""

PRESETS: dict[str, dict[str, MethodConfig]] = {
    "ssd-kd": {
        "paper": SSDKDConfig(),
        "digits": SSDKD_DIGITS,
        "fashion-mnist": SSDKD_FASHION_MNIST,
    },
    "fast-dfkd": {
        "paper": FAST2,
        "fast-5": FAST5,
        "fast-10": FAST10,
        "digits": FAST2_DIGITS,
        "fast-5-digits": FAST5_DIGITS,
        "fashion-mnist": FAST2_FASHION_MNIST,
        "fast-5-fashion-mnist": FAST5_FASHION_MNIST,
    },
    "deepinversion": {
        "paper": DeepInversionConfig(),
        "digits": DEEPINVERSION_DIGITS,
        "fashion-mnist": DEEPINVERSION_FASHION_MNIST,
    },
    "noise-control": {"paper": NoiseControlConfig()},
}
"""Method name → preset name → config. "paper" is the published setting (Fast-2 for
Fast-DFKD); "digits" is the budget scaled to scikit-learn digits (8×8); "fashion-mnist"
is for 28×28 single-channel teachers (Fashion-MNIST, MNIST, KMNIST...); the "fast-5-*"
presets are Fast-5 at those budgets."""

__all__ = [
    "DEEPINVERSION_DIGITS",
    "DEEPINVERSION_FASHION_MNIST",
    "FAST2",
    "FAST2_DIGITS",
    "FAST2_FASHION_MNIST",
    "FAST5",
    "FAST5_DIGITS",
    "FAST5_FASHION_MNIST",
    "FAST10",
    "METHODS",
    "PRECISIONS",
    "PRESETS",
    "SSDKD",
    "SSDKD_DIGITS",
    "SSDKD_FASHION_MNIST",
    "DeepInversion",
    "DeepInversionConfig",
    "DistillationMethod",
    "FastDFKD",
    "FastDFKDConfig",
    "MethodConfig",
    "NoiseControl",
    "NoiseControlConfig",
    "NonFiniteLossError",
    "PoolMethod",
    "Precision",
    "SSDKDConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "noise_control_for",
]

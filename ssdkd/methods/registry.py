"""The one table of methods: every name, config class and preset derives from it.

Adding a method is one module (its config, presets, class and a
:class:`~ssdkd.methods.base.MethodSpec` named ``SPEC``) and one entry in
:data:`REGISTRY`; ``ssdkd.distill``, ``ssdkd distill --method``, the JSON round trip of
configs and the contract tests read this table.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ssdkd.methods import (
    cmi,
    dafl,
    deepinversion,
    dfad,
    dfq,
    fast_dfkd,
    nayer,
    noise,
    real_data,
    ssd_kd,
    zskt,
)
from ssdkd.methods.base import MethodSpec
from ssdkd.methods.config import MethodConfig

__all__ = [
    "METHODS",
    "PRESETS",
    "PRESET_INPUTS",
    "REGISTRY",
    "RETIRED_FIELDS",
    "check_config_for",
    "config_from_dict",
    "drop_retired_fields",
    "method_spec",
    "preset_for",
    "spec_of_config",
]

REGISTRY: tuple[MethodSpec, ...] = (
    ssd_kd.SPEC,
    fast_dfkd.SPEC,
    deepinversion.SPEC,
    cmi.SPEC,
    nayer.SPEC,
    dafl.SPEC,
    dfad.SPEC,
    dfq.SPEC,
    zskt.SPEC,
    noise.SPEC,
    real_data.SPEC,
)
"""Every method, in the order the command line and the docs list them."""

METHODS: dict[str, MethodSpec] = {spec.name: spec for spec in REGISTRY}
"""Method name → :class:`~ssdkd.methods.base.MethodSpec`."""

PRESETS: dict[str, dict[str, MethodConfig]] = {spec.name: dict(spec.presets) for spec in REGISTRY}
"""Method name → preset name → config. "paper" is the published setting (Fast-2 for
Fast-DFKD); "digits" is the budget scaled to scikit-learn digits (8×8); "fashion-mnist"
is for 28×28 single-channel teachers (Fashion-MNIST, MNIST, KMNIST...); the "fast-5-*"
presets are Fast-5 at those budgets."""

PRESET_INPUTS: dict[str, tuple[tuple[int, int], ...]] = {
    "paper": ((3, 32),),
    "fast-5": ((3, 32),),
    "fast-10": ((3, 32),),
    "digits": ((1, 8),),
    "fast-5-digits": ((1, 8),),
    "fashion-mnist": ((1, 28),),
    "fast-5-fashion-mnist": ((1, 28),),
    "mnist": ((1, 32), (1, 28)),
    "nayer-200": ((3, 32),),
    "nayer-300": ((3, 32),),
}
"""Preset name → the (channels, side) of the images it was made for: CIFAR's 3×32×32
for the papers' settings, 8×8 digits, 28×28 single-channel images, the MNIST papers'
32×32 LeNet input (28×28 as well)."""


_UNDECLARED = {p for spec in REGISTRY for p in spec.presets} - set(PRESET_INPUTS)
if _UNDECLARED:
    raise RuntimeError(f"presets without declared input sizes: {sorted(_UNDECLARED)}")


def preset_for(method: str, channels: int, size: int) -> str | None:
    """The first preset of ``method`` made for ``channels``×``size``×``size`` images, or
    ``None`` if it has none.

    Examples:
        >>> preset_for("ssd-kd", 1, 28), preset_for("dfad", 1, 32), preset_for("dfq", 1, 8)
        ('fashion-mnist', 'mnist', None)
    """
    for name in method_spec(method).presets:
        if (channels, size) in PRESET_INPUTS[name]:
            return name
    return None


RETIRED_FIELDS: dict[str, tuple[str, ...]] = {"SSDKDConfig": ("pool_capacity",)}
"""Config class name → fields an earlier ssdkd wrote into configs and checkpoints that
never had an effect (``SSDKDConfig.pool_capacity`` was inherited from Fast-DFKD's config
and ignored); reading an old config drops them, so old runs still resume and compare."""

_BY_CONFIG: dict[type, MethodSpec] = {spec.config_class: spec for spec in REGISTRY}
_BY_CONFIG_NAME: dict[str, MethodSpec] = {cls.__name__: s for cls, s in _BY_CONFIG.items()}
if len(_BY_CONFIG) != len(REGISTRY) or len(METHODS) != len(REGISTRY):
    raise RuntimeError("every method needs its own name and its own config class")


def method_spec(name: str) -> MethodSpec:
    """The registered method called ``name``.

    Raises:
        ValueError: No method has that name (the message lists the names).

    Examples:
        >>> method_spec("ssd-kd").config_class.__name__
        'SSDKDConfig'
    """
    if name not in METHODS:
        raise ValueError(f"Expected `method` to be one of {list(METHODS)}, got {name!r}")
    return METHODS[name]


def spec_of_config(config: object) -> MethodSpec:
    """The method whose config class ``config`` is exactly.

    Raises:
        TypeError: ``config`` is no registered method's config.
    """
    spec = _BY_CONFIG.get(type(config))
    if spec is None:
        raise TypeError(
            f"Expected the config of a registered method ({', '.join(_BY_CONFIG_NAME)}), "
            f"got a {type(config).__name__}"
        )
    return spec


def check_config_for(name: str, config: object) -> MethodSpec:
    """The spec of method ``name`` after checking that ``config`` is its config.

    Raises:
        ValueError: Unknown method name.
        TypeError: ``config`` belongs to another method, or to none; the message names
            both methods.

    Examples:
        >>> from ssdkd.methods import SSDKD_PAPER
        >>> check_config_for("fast-dfkd", SSDKD_PAPER)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        TypeError: Expected ... got an SSDKDConfig, the config of method 'ssd-kd'...
    """
    spec = method_spec(name)
    if type(config) is spec.config_class:
        return spec
    owner = _BY_CONFIG.get(type(config))
    expected = _a(spec.config_class.__name__)
    whose = f", the config of method {owner.name!r}" if owner else ", no method's config"
    hint = f"pass method={owner.name!r} or " if owner else "pass "
    raise TypeError(
        f"Expected `config` for method {name!r} to be {expected}, got "
        f"{_a(type(config).__name__)}{whose}; {hint}{expected} (e.g. "
        f"ssdkd.methods.PRESETS[{name!r}]['paper'])"
    )


def _a(noun: str) -> str:
    """``noun`` with its indefinite article as it is read aloud ("an SSDKDConfig")."""
    return f"{'an' if noun[:1] in 'AEFHILMNORSX' else 'a'} {noun}"


def config_from_dict(data: dict[str, Any]) -> MethodConfig:
    """Rebuild a config written by :func:`~ssdkd.methods.config_to_dict`.

    Raises:
        ValueError: An unknown ``config_class`` or unknown fields.
    """
    values = drop_retired_fields(data)
    name = values.pop("config_class", None)
    if name not in _BY_CONFIG_NAME:
        raise ValueError(
            f"Expected `config_class` to be one of {sorted(_BY_CONFIG_NAME)}, got {name!r}"
        )
    cls = _BY_CONFIG_NAME[name].config_class
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"Unknown fields for {name}: {unknown}")
    return cls(**values)


def drop_retired_fields(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of a config dict (with its ``config_class``) without its class's
    :data:`RETIRED_FIELDS`."""
    retired = RETIRED_FIELDS.get(str(data.get("config_class")), ())
    return {key: value for key, value in data.items() if key not in retired}

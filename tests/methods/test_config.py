"""Config presets, ``--set`` overrides and the JSON round trip."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from ssdkd.methods import (
    FAST2,
    FAST5,
    FAST10,
    METHODS,
    PRESETS,
    SSDKD_FASHION_MNIST,
    DeepInversionConfig,
    FastDFKDConfig,
    MethodConfig,
    NoiseControlConfig,
    SSDKDConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
)


def test_defaults_are_the_published_cifar_settings() -> None:
    assert (FAST2.g_steps, FAST2.lr_g, FAST2.lr_z) == (2, 5e-3, 0.015)
    assert (FAST5.g_steps, FAST5.lr_g, FAST5.lr_z) == (5, 3e-3, 0.01)
    assert (FAST10.g_steps, FAST10.lr_g, FAST10.lr_z) == (10, 2e-3, 0.01)
    assert (FAST2.rounds, FAST2.warmup_rounds, FAST2.kd_steps) == (220, 20, 400)
    assert (FAST2.bn_weight, FAST2.oh_weight, FAST2.adv_weight, FAST2.bn_momentum) == (
        10.0,
        0.5,
        1.33,
        0.9,
    )
    assert (FAST2.temperature, FAST2.student_lr, FAST2.synthesis_batch_size) == (20.0, 0.2, 256)
    ssd = SSDKDConfig()
    assert (ssd.buffer_size, ssd.alpha, ssd.beta, ssd.priority_eps) == (5000, 0.6, 0.4, 1e-6)
    di = DeepInversionConfig()
    assert (di.iterations, di.synthesis_batch_size, di.bn_weight, di.temperature) == (
        2000,
        256,
        10.0,
        3.0,
    )


def test_every_method_has_its_default_as_paper_preset() -> None:
    for name, spec in METHODS.items():
        assert PRESETS[name]["paper"] == spec.default


def test_overrides_parse_by_field_type() -> None:
    config = apply_overrides(
        SSDKDConfig(),
        ["buffer_size=6000", "gamma=0.5", "use_phi=false", "refresh_policy=fifo"],
    )
    assert (config.buffer_size, config.gamma, config.use_phi, config.refresh_policy) == (
        6000,
        0.5,
        False,
        "fifo",
    )


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("buffer_size", "field=value"),
        ("bufer_size=3", "Unknown field 'bufer_size'.*buffer_size"),
        # Regression: the message read "to be a int".
        ("buffer_size=many", "`buffer_size` to be an integer, got 'many'"),
        ("use_phi=maybe", "`use_phi` to be true or false"),
        ("refresh_policy=random", "`refresh_policy` to be one of"),
        ("buffer_size=0", "`buffer_size`.*positive"),
    ],
)
def test_bad_overrides_raise_naming_the_field(assignment: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        apply_overrides(SSDKDConfig(), [assignment])


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("name", ["student_lr", "alpha", "beta", "gamma", "bn_momentum"])
def test_non_finite_numbers_are_refused(name: str, value: str) -> None:
    """Prevents NaN passing every range check: ``nan <= 0`` and ``nan < 0`` are false, so
    ``student_lr=nan`` used to build a config whose first KD step turns the student NaN."""
    with pytest.raises(ValueError, match=rf"`{name}` of SSDKDConfig to be a finite number"):
        apply_overrides(SSDKDConfig(), [f"{name}={value}"])
    with pytest.raises(ValueError, match=rf"`{name}`"):
        dataclasses.replace(SSDKDConfig(), **{name: float(value)})


@pytest.mark.parametrize(
    "config", [FastDFKDConfig(), DeepInversionConfig(), NoiseControlConfig(), SSDKDConfig()]
)
def test_every_config_class_refuses_nan_in_each_float_field(config: MethodConfig) -> None:
    fields = dataclasses.fields(config)
    floats = [f.name for f in fields if isinstance(getattr(config, f.name), float)]
    assert floats
    for name in floats:
        with pytest.raises(ValueError, match=rf"`{name}`.*finite"):
            dataclasses.replace(config, **{name: math.nan})


def test_config_dict_round_trips_through_json() -> None:
    config = dataclasses.replace(SSDKDConfig(), buffer_size=1234, refresh_policy="fifo")
    assert config_from_dict(json.loads(json.dumps(config_to_dict(config)))) == config


def test_config_from_dict_rejects_unknown_classes_and_fields() -> None:
    with pytest.raises(ValueError, match="config_class"):
        config_from_dict({"config_class": "Nope"})
    with pytest.raises(ValueError, match="Unknown fields"):
        config_from_dict({"config_class": "SSDKDConfig", "colour": "red"})


def test_a_synthesis_window_inside_the_warm_up_is_refused_with_the_fields_to_change() -> None:
    """Regression: `--rounds 30` on the Fashion-MNIST preset kept 20 warm-up rounds while
    synthesis stopped at round 18, so the adversarial synthesis never ran."""
    with pytest.raises(
        ValueError,
        match=r"`warmup_rounds` of SSDKDConfig \(20\) < the rounds that synthesise, "
        r"round\(synthesis_share · rounds\) = 18 .* Lower `warmup_rounds` \(below 18\), "
        r"raise `rounds` \(to 35 or more\)",
    ):
        dataclasses.replace(SSDKD_FASHION_MNIST, rounds=30)
    assert dataclasses.replace(SSDKD_FASHION_MNIST, rounds=35).synthesis_rounds == 21

"""Fixtures: tiny method configs whose steps run in milliseconds."""

from __future__ import annotations

import dataclasses

import pytest

from ssdkd.methods import (
    DEEPINVERSION_DIGITS,
    FAST2_DIGITS,
    SSDKD_DIGITS,
    DeepInversionConfig,
    FastDFKDConfig,
    NoiseControlConfig,
    SSDKDConfig,
)

TINY_BUDGET = {
    "rounds": 4,
    "warmup_rounds": 1,
    "kd_steps": 3,
    "kd_batch_size": 16,
}


@pytest.fixture
def tiny_ssdkd_config() -> SSDKDConfig:
    return dataclasses.replace(
        SSDKD_DIGITS, **TINY_BUDGET, synthesis_batch_size=16, buffer_size=40, latent_dim=8,
        generator_width=4,
    )


@pytest.fixture
def tiny_fast_config() -> FastDFKDConfig:
    return dataclasses.replace(
        FAST2_DIGITS, **TINY_BUDGET, synthesis_batch_size=16, latent_dim=8, generator_width=4
    )


@pytest.fixture
def tiny_di_config() -> DeepInversionConfig:
    return dataclasses.replace(
        DEEPINVERSION_DIGITS, **TINY_BUDGET, synthesis_batch_size=16, iterations=5
    )


@pytest.fixture
def tiny_noise_config() -> NoiseControlConfig:
    return NoiseControlConfig(**TINY_BUDGET, pool_size=64, crop_padding=1, flip=False)



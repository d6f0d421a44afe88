"""Fixtures: tiny method configs whose steps run in milliseconds."""

from __future__ import annotations

import pytest

from ssdkd.methods import DeepInversionConfig, FastDFKDConfig, NoiseControlConfig, SSDKDConfig
from tests.methods.tiny import TINY_DI, TINY_FAST, TINY_NOISE, TINY_SSDKD


@pytest.fixture
def tiny_ssdkd_config() -> SSDKDConfig:
    return TINY_SSDKD


@pytest.fixture
def tiny_fast_config() -> FastDFKDConfig:
    return TINY_FAST


@pytest.fixture
def tiny_di_config() -> DeepInversionConfig:
    return TINY_DI


@pytest.fixture
def tiny_noise_config() -> NoiseControlConfig:
    return TINY_NOISE

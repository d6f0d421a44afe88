"""Shared test configuration: Hypothesis profiles, the ``cuda`` marker, torch threads."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

# "dev" keeps the local loop fast; "ci" explores more examples with no deadline
# (shared CI machines are noisy). Select with HYPOTHESIS_PROFILE=ci.
settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_cuda = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip_cuda)

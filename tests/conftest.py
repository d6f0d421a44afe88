"""Shared test configuration: Hypothesis profiles, the ``cuda`` marker, torch threads, and
a check that the test run leaves the repository's files as it found them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

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


ROOT = Path(__file__).resolve().parents[1]
_TREE_BEFORE = pytest.StashKey[str | None]()


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    ).stdout


def _tree_state() -> str | None:
    """The repository's changed and untracked files with their contents' hashes, or
    ``None`` outside a git checkout."""
    try:
        listed = _git("status", "--porcelain", "--untracked-files=all")
        paths = [line[3:] for line in listed.splitlines() if line[3:] and " -> " not in line]
        hashed = _git("hash-object", "--", *[p for p in paths if (ROOT / p).is_file()])
    except (OSError, subprocess.SubprocessError):
        return None
    return listed + hashed


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_TREE_BEFORE] = _tree_state()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail a passing run whose tests wrote into the repository (a benchmark smoke test
    once overwrote the committed results page and its JSON)."""
    before = session.config.stash.get(_TREE_BEFORE, None)
    after = _tree_state()
    if exitstatus == 0 and before is not None and after is not None and before != after:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nThe tests changed files of the repository (git status before and after differ).")

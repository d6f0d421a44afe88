"""The examples under docs/examples run as documented."""

from __future__ import annotations

import runpy
from pathlib import Path

import torch

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def test_deepinversion_loop_with_phi_and_priority_buffer_runs(capsys):
    scope = runpy.run_path(str(EXAMPLES / "deepinversion_plus_ssdkd.py"), run_name="__main__")
    buffer = scope["buffer"]
    assert len(buffer) == 4 * 64
    # Priorities were set from w · KL, so they are no longer the initial 1.0 everywhere.
    assert not torch.all(buffer.priorities() == 1.0)
    assert torch.isfinite(scope["loss"])
    assert capsys.readouterr().out.count("buffer") == 4

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


def test_readme_component_snippets_run() -> None:
    """The README's "components in your own loop" code blocks run as written, in order."""
    readme = (EXAMPLES.parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The components in your own loop", 1)[1].split("\n## ", 1)[0]
    blocks = [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]
    assert len(blocks) == 2
    scope: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), scope)
    draw = scope["draw"]
    assert abs(float(draw.weights.mean()) - 1.0) < 1e-5  # type: ignore[attr-defined]
    assert scope["x"].shape == (64, 3, 32, 32)  # type: ignore[attr-defined]

"""Keep benchmarks/sampling.py from rotting: a --quick run must finish and print its table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sampling_benchmark_quick_run_prints_table() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "sampling.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (
        "| N | B | implementation | sample µs | update µs | extend µs | full step µs |"
        in result.stdout
    )
    assert "PriorityBuffer" in result.stdout

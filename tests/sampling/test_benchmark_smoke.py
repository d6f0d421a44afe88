"""Keep benchmarks/sampling.py from rotting: a --quick run must finish and print its table."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_quick(*extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "sampling.py"), "--quick", *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        check=False,
    )


def test_sampling_benchmark_quick_run_prints_table() -> None:
    result = run_quick()
    assert result.returncode == 0, result.stderr
    assert (
        "| N | B | implementation | sample µs | update µs | extend µs | full step µs |"
        in result.stdout
    )
    assert "PriorityBuffer" in result.stdout


def test_baseline_checkout_is_timed_in_the_same_table(tmp_path: Path) -> None:
    """``--baseline`` times another checkout's PriorityBuffer beside this one's (here a
    copy of the package; the run checks that it imported the copy)."""
    shutil.copytree(ROOT / "ssdkd", tmp_path / "ssdkd")
    result = run_quick("--baseline", str(tmp_path), "--implementations", "priority-buffer")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "| PriorityBuffer" in line]
    assert len(rows) == 2
    baseline = [cell.strip() for cell in rows[1].strip("|").split("|")]
    assert baseline[2].startswith("PriorityBuffer at ")
    assert all(float(cell) > 0 for cell in baseline[3:])

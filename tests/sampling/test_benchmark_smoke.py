"""Keep benchmarks/sampling.py from rotting: a --quick run must finish and print its table."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_quick(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """A --quick run whose JSON and results section go under ``out``, not the repository."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    files = ["--out", str(out / "sampling.json"), "--markdown", str(out / "results.md")]
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "sampling.py"), "--quick", *files, *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        check=False,
    )


def test_sampling_benchmark_quick_run_prints_table(tmp_path: Path) -> None:
    result = run_quick(tmp_path)
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
    baseline = ("--baseline", str(tmp_path), "--implementations", "priority-buffer")
    result = run_quick(tmp_path, *baseline)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "| PriorityBuffer" in line]
    assert len(rows) == 2
    cells = [cell.strip() for cell in rows[1].strip("|").split("|")]
    assert cells[2].startswith("PriorityBuffer at ")
    assert all(float(cell) > 0 for cell in cells[3:])


def test_numpy_floor_draws_in_proportion_to_priority() -> None:
    """The benchmark's ``numpy floor`` row times a correct sampler: a floor that drew the
    wrong items (a descent off by one level, stale parent sums after an update) would time
    less work than the real structure and understate the gap to cpprb."""
    import numpy as np

    from benchmarks.sampling import ALPHA, EPS, NumpyFloor

    rng = np.random.default_rng(0)
    n = 20_000  # above the 8,192-node top row, so the descent crosses binary levels
    floor = NumpyFloor(n, np.random.default_rng(1))
    floor.extend(np.arange(n))
    raw = rng.random(n) * (np.arange(n) % 7)  # a seventh of the items at priority 0
    floor.update(np.arange(n), raw)
    floor.update(np.arange(0, n, 3), raw[::3] * 2)  # sums above must follow the change
    raw[::3] *= 2
    mass = (raw + EPS) ** ALPHA
    expected = mass / mass.sum()
    counts = np.zeros(n)
    for _ in range(400):
        payload, idx, weights = floor.sample(512)
        np.testing.assert_array_equal(payload, idx)
        assert weights.max() == 1.0
        assert weights.min() > 0
        np.add.at(counts, idx, 1)
    for group in (np.arange(n) % 7, np.arange(n) // 2000):  # by priority class and by range
        seen = np.bincount(group, counts) / counts.sum()
        np.testing.assert_allclose(seen, np.bincount(group, expected), atol=0.004)

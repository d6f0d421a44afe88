"""Keep benchmarks/efficiency.py and benchmarks/overhead.py from rotting.

Each script runs once with ``--quick`` on a tiny budget; every output goes to ``tmp_path``
so the docs are never rewritten by the tests. The efficiency runs use a random-weight
digits teacher written here (training one would dominate the test's time); accuracy is
not what these tests check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ssdkd.data import load_dataset
from ssdkd.engine.teacher import save_teacher
from ssdkd.models import create_model

ROOT = Path(__file__).resolve().parents[2]
ROUND_KEYS = {
    "round",
    "images_synthesized",
    "kd_steps",
    "synthesis_seconds",
    "kd_seconds",
    "overall_seconds",
    "accuracy",
}


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args, "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
        check=False,
    )


@pytest.fixture(scope="module")
def digits_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = create_model("small_cnn", num_classes=10, in_channels=1, image_size=8)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    save_teacher(
        path,
        model.eval(),
        model_name="small_cnn",
        dataset=data,
        accuracy=0.0,
        in_channels=1,
        image_size=8,
    )
    return path


@pytest.mark.slow
@pytest.mark.parametrize("ablation", [False, True], ids=["methods", "ablation"])
def test_efficiency_quick_run_writes_json_plot_and_table(
    tmp_path: Path, digits_teacher: Path, ablation: bool
) -> None:
    out, plot, markdown = tmp_path / "e.json", tmp_path / "e.png", tmp_path / "bench.md"
    markdown.write_text("# Benchmarks\n\nexisting section\n")
    args = ["--dataset", "digits", "--teacher", str(digits_teacher), "--quick", "--seeds", "0"]
    args += ["--out", str(out), "--plot", str(plot), "--markdown", str(markdown)]
    if ablation:
        args.append("--ablation")
    result = _run("efficiency.py", *args)
    assert result.returncode == 0, result.stderr

    data = json.loads(out.read_text())
    assert {"dataset", "teacher_accuracy", "machine", "command", "runs", "summary"} <= set(data)
    names = {run["name"] for run in data["runs"]}
    expected = (
        {"ssd-kd", "no-diversity", "no-difficulty", "no-priority", "no-phi"}
        if ablation
        else {"deepinversion", "fast-2", "fast-5", "ssd-kd"}
    )
    assert names == expected
    for run in data["runs"]:
        assert run["history"]
        assert set(run["history"][-1]) >= ROUND_KEYS
    assert set(data["summary"]["methods"]) == expected
    assert plot.stat().st_size > 0
    text = markdown.read_text()
    assert "existing section" in text
    assert ("Δ vs SSD-KD" if ablation else "time to Fast-2's final") in text


@pytest.mark.slow
def test_overhead_quick_run_writes_ratios(tmp_path: Path) -> None:
    out, markdown = tmp_path / "o.json", tmp_path / "bench.md"
    result = _run("overhead.py", "--quick", "--out", str(out), "--markdown", str(markdown))
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert [row["teacher"] for row in data["pairs"]] == ["small_cnn", "resnet34"]
    for row in data["pairs"]:
        assert row["ratio_median"] > 0
        assert row["bare_ms_median"] > 0
    assert "ratio median" in markdown.read_text()

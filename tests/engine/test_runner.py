"""The run engine: rounds, records, checkpoints, exact resume, non-finite guard."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ssdkd.engine import CheckpointError, load_checkpoint
from ssdkd.engine.runner import NonFiniteLossError, run_rounds
from ssdkd.methods import SSDKD, FastDFKD, NoiseControl
from tests.methods.tiny import TINY_FAST, TINY_NOISE, TINY_SSDKD, build

ROOT = Path(__file__).resolve().parents[2]


def _job(tmp_path: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.engine.resume_job",
            "--run-dir",
            str(tmp_path / "run"),
            "--out",
            str(tmp_path / f"{name}.pt"),
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _assert_identical(a: dict, b: dict) -> None:
    for part in ("student", "generator"):
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key} differs"
    for key, value in a["buffer"].items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, b["buffer"][key]), f"buffer.{key} differs"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("straight")
    done = _job(tmp, "final")
    assert done.returncode == 0, done.stderr
    return load_checkpoint(tmp / "final.pt")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kill_round", "kill_after"), [(2, 0), (2, 1)], ids=["between", "mid-round"]
)
def test_a_killed_run_resumes_bit_identical(tmp_path, uninterrupted, kill_round, kill_after):
    killed = _job(
        tmp_path, "partial", "--kill-round", str(kill_round), "--kill-after-steps", str(kill_after)
    )
    assert killed.returncode == 3, killed.stderr
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["round"] == 2
    resumed = _job(tmp_path, "final", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    _assert_identical(uninterrupted, load_checkpoint(tmp_path / "final.pt"))
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["round"] for line in lines] == [1, 2, 3, 4]


def test_run_writes_config_metrics_checkpoints_and_history(tmp_path):
    method = build(SSDKD, TINY_SSDKD)
    x = torch.rand(32, 1, 8, 8)
    y = torch.randint(0, 4, (32,))
    result = run_rounds(method, eval_data=(x, y), run_dir=tmp_path, progress=False)
    assert [r["round"] for r in result.history] == [1, 2, 3, 4]
    assert [r["kd_steps"] for r in result.history] == [0, 3, 6, 9]
    assert [r["images_synthesized"] for r in result.history] == [16, 32, 48, 64]
    assert result.best_accuracy == max(r["accuracy"] for r in result.history)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["method"] == "SSDKD"
    assert config["buffer_size"] == TINY_SSDKD.buffer_size
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 4
    last = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert last["round"] == 4
    assert {"trainer", "synthesis", "buffer", "generator"} <= set(last["method"])
    best = torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)
    assert best["accuracy"] == result.best_accuracy
    for key, value in best["state_dict"].items():
        assert torch.equal(value, result.student.state_dict()[key])
    assert (tmp_path / "synthetic.pt").is_file()


def test_resume_without_a_checkpoint_starts_fresh(tmp_path):
    result = run_rounds(build(FastDFKD, TINY_FAST), run_dir=tmp_path, resume=True, progress=False)
    assert len(result.history) == TINY_FAST.rounds


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_corrupt_checkpoint_gives_an_error_naming_the_file(tmp_path, damage):
    run_rounds(build(FastDFKD, TINY_FAST), run_dir=tmp_path, progress=False)
    last = tmp_path / "checkpoints" / "last.pt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"last\.pt"):
        run_rounds(build(FastDFKD, TINY_FAST), run_dir=tmp_path, resume=True, progress=False)


def test_resume_with_another_config_is_refused(tmp_path):
    run_rounds(build(FastDFKD, TINY_FAST), run_dir=tmp_path, progress=False)
    other = dataclasses.replace(TINY_FAST, kd_steps=5)
    with pytest.raises(CheckpointError, match="another config"):
        run_rounds(build(FastDFKD, other), run_dir=tmp_path, resume=True, progress=False)


def test_repeated_non_finite_kd_losses_stop_the_run():
    method = build(NoiseControl, TINY_NOISE)
    with torch.no_grad():
        method.student.head.bias.fill_(float("inf"))
    with pytest.raises(NonFiniteLossError, match="3 consecutive KD steps"):
        run_rounds(method, progress=False, max_nonfinite_steps=3)


def test_a_generator_round_without_a_finite_loss_stops_the_run():
    method = build(FastDFKD, TINY_FAST)
    with torch.no_grad():
        method.student.head.bias.fill_(float("inf"))  # poisons the adversarial term
    with pytest.raises(NonFiniteLossError, match="inner generator steps"):
        run_rounds(method, progress=False)

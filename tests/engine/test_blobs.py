"""Checkpoints whose large tensors are stored once, by content."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

import ssdkd.engine.blobs as blobs
from ssdkd.engine import CheckpointError
from ssdkd.engine.blobs import load_with_blobs, remove_unreferenced_blobs, save_with_blobs
from ssdkd.engine.runner import run_rounds
from ssdkd.methods import FastDFKD
from ssdkd.methods.common import TransferPool
from tests.methods.tiny import TINY_FAST, build

pytestmark = pytest.mark.filterwarnings("ignore::ssdkd.engine.CollapseWarning")


@pytest.fixture
def small_blobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blobs from 1 KiB and pool blocks of 16 images, so tiny runs exercise both."""
    monkeypatch.setattr(blobs, "BLOB_MIN_BYTES", 1024)
    monkeypatch.setattr(TransferPool, "BLOCK", 16)


def test_large_tensors_round_trip_through_blobs_and_small_ones_stay_inline(
    tmp_path: Path, small_blobs: None
) -> None:
    big, small = torch.arange(512, dtype=torch.float32), torch.ones(3)
    state = {"kind": "run", "a": [big, (small, big.clone())], "b": {"c": big.to(torch.bfloat16)}}
    names = save_with_blobs(state, tmp_path / "last.pt", tmp_path / "blobs")
    assert len(names) == 2  # the float32 tensor (twice, one blob) and its bf16 copy
    assert sorted(p.stem for p in (tmp_path / "blobs").iterdir()) == sorted(names)
    loaded = load_with_blobs(tmp_path / "last.pt", tmp_path / "blobs", kind="run")
    assert torch.equal(loaded["a"][0], big)
    assert torch.equal(loaded["a"][1][1], big)
    assert torch.equal(loaded["a"][1][0], small)
    assert loaded["b"]["c"].dtype == torch.bfloat16
    assert torch.equal(loaded["b"]["c"], big.to(torch.bfloat16))


def test_a_missing_blob_is_an_error_naming_the_checkpoint(
    tmp_path: Path, small_blobs: None
) -> None:
    names = save_with_blobs(
        {"kind": "run", "x": torch.zeros(512)}, tmp_path / "last.pt", tmp_path / "blobs"
    )
    (tmp_path / "blobs" / f"{next(iter(names))}.pt").unlink()
    with pytest.raises(CheckpointError, match=r"last\.pt' refers to blob .* does not exist"):
        load_with_blobs(tmp_path / "last.pt", tmp_path / "blobs", kind="run")


def test_unreferenced_blobs_and_leftover_temporary_files_are_removed(tmp_path: Path) -> None:
    blob_dir = tmp_path / "blobs"
    blob_dir.mkdir()
    for name in ("keep.pt", "old.pt", ".old.pt.x1.tmp"):
        (blob_dir / name).write_bytes(b"")
    remove_unreferenced_blobs(blob_dir, {"keep"})
    assert [p.name for p in blob_dir.iterdir()] == ["keep.pt"]


def _blob_files(run: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (run / "checkpoints" / "blobs").iterdir()}


def test_a_checkpoint_does_not_rewrite_an_unchanged_pool(tmp_path: Path, small_blobs: None):
    """Regression: every checkpoint rewrote the whole transfer pool, hundreds of megabytes
    a round at CIFAR scale, though a pool only appends."""
    config = dataclasses.replace(TINY_FAST, rounds=5)
    seen: list[dict[str, int]] = []
    method = build(FastDFKD, config)
    synthesize = method.synthesize

    def synthesize_and_look(round_index: int) -> dict[str, float]:
        if round_index > 0:
            seen.append(_blob_files(tmp_path))
        return synthesize(round_index)

    method.synthesize = synthesize_and_look  # type: ignore[method-assign]
    run_rounds(method, run_dir=tmp_path, progress=False)
    seen.append(_blob_files(tmp_path))
    # 16 images a round, blocks of 16: block k is made in round k and never changes.
    blocks = [f"{blobs._digest(b)}.pt" for b in method.pool.state_dict()["images"]]
    assert len(blocks) == config.rounds
    for k, block in enumerate(blocks):
        if k:
            assert block not in seen[k - 1]
        written = {files[block] for files in seen[k:]}
        assert len(written) == 1, f"block {k} written {len(written)} times"


def test_a_run_with_blobs_resumes_bit_identical(tmp_path: Path, small_blobs: None) -> None:
    config = dataclasses.replace(TINY_FAST, rounds=5)
    whole = run_rounds(build(FastDFKD, config), run_dir=tmp_path / "a", progress=False)
    first = build(FastDFKD, config)
    stop_after = 3

    def stop(round_index: int) -> dict[str, float]:
        if round_index == stop_after:
            raise KeyboardInterrupt
        return synthesize(round_index)

    synthesize = first.synthesize
    first.synthesize = stop  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        run_rounds(first, run_dir=tmp_path / "b", progress=False)
    assert (tmp_path / "b" / "checkpoints" / "blobs").is_dir()
    resumed = run_rounds(
        build(FastDFKD, config), run_dir=tmp_path / "b", resume=True, progress=False
    )
    for a, b in zip(
        whole.student.state_dict().values(), resumed.student.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)

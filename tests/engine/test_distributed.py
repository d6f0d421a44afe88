"""Process groups from the torchrun environment, shards, and the global reductions."""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ssdkd.engine.distributed import init_from_environment, shard_range
from ssdkd.sampling import all_reduce_sum, global_class_counts, global_mean_normalized

ROOT = Path(__file__).resolve().parents[2]


def test_without_torchrun_a_run_is_single_process() -> None:
    assert init_from_environment(env={}) is None
    assert init_from_environment(env={"WORLD_SIZE": "1", "RANK": "0"}) is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE to be an int, got 'two'"),
        ({"WORLD_SIZE": "0"}, "WORLD_SIZE in >= 1, got 0"),
        ({"WORLD_SIZE": "2", "LOCAL_RANK": "0"}, "RANK to be set"),
        ({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0"}, r"RANK in \[0, 2\), got 2"),
        ({"WORLD_SIZE": "2", "RANK": "0"}, "LOCAL_RANK to be set"),
        (
            {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_PORT": "1"},
            "MASTER_ADDR to be set",
        ),
        (
            {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "h"},
            "MASTER_PORT to be set",
        ),
    ],
)
def test_malformed_torchrun_environment_names_the_variable(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        init_from_environment(env=env)


def test_bad_arguments_are_named() -> None:
    for bad in (0, float("inf"), True):
        with pytest.raises(ValueError, match="`timeout_s` to be a finite number > 0"):
            init_from_environment(timeout_s=bad, env={})
    with pytest.raises(ValueError, match="`backend` in"):
        init_from_environment(backend="mpi", env={})


@pytest.mark.property
@given(total=st.integers(0, 1000), world=st.integers(1, 17))
def test_shards_cover_every_item_once_and_differ_by_at_most_one(total: int, world: int) -> None:
    shards = [shard_range(total, rank, world) for rank in range(world)]
    assert shards[0][0] == 0
    assert shards[-1][1] == total
    assert all(a[1] == b[0] for a, b in itertools.pairwise(shards))
    sizes = [stop - start for start, stop in shards]
    assert max(sizes) - min(sizes) <= 1


def test_shard_range_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="rank in"):
        shard_range(10, 3, 3)
    with pytest.raises(ValueError, match="`total` to be an int"):
        shard_range(1.5, 0, 1)  # type: ignore[arg-type]


def test_global_reductions_are_the_local_values_in_one_process() -> None:
    assert global_class_counts(torch.tensor([2, 0, 1])).tolist() == [2, 0, 1]
    weights = global_mean_normalized(torch.tensor([1.0, 2.0, 3.0]))
    assert weights.tolist() == pytest.approx([0.5, 1.0, 1.5])
    assert all_reduce_sum(torch.tensor([4.0])).item() == 4.0
    with pytest.raises(ValueError, match="1-D integer tensor"):
        global_class_counts(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="non-empty 1-D floating tensor"):
        global_mean_normalized(torch.tensor([], dtype=torch.float32))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def torchrun(scenario: str, out: Path, timeout: float = 120.0) -> list[dict[str, object]]:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(free_port()),
        str(ROOT / "tests" / "distributed_worker.py"),
        scenario,
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.mark.slow
def test_two_torchrun_processes_share_class_counts_and_the_weight_mean(tmp_path: Path) -> None:
    ranks = torchrun("collectives", tmp_path)
    for rank in ranks:
        assert rank["world"] == 2
        assert rank["counts"] == [3, 0, 10]
        assert rank["sum"] == 1.0
    # Global batch [1] + [1, 2] has mean 4/3: each rank's share is divided by it.
    assert ranks[0]["weights"] == pytest.approx([0.75])
    assert ranks[1]["weights"] == pytest.approx([0.75, 1.5])
    assert [rank["shard"] for rank in ranks] == [[0, 4], [4, 7]]


@pytest.mark.slow
def test_a_collective_with_a_departed_rank_fails_instead_of_hanging(tmp_path: Path) -> None:
    """Regression guard for the failure mode the timeout exists for: a rank that leaves
    must end the others' collective with an error in bounded time, never a hang."""
    ranks = torchrun("dead-rank", tmp_path)
    assert ranks[1]["left"] is True
    assert ranks[0]["error"] is not None
    assert ranks[0]["seconds"] < 60

"""Process groups from the torchrun environment, shards, and the global reductions."""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import ssdkd
from ssdkd.engine import CheckpointError, atomic_save, load_checkpoint
from ssdkd.engine.distributed import init_from_environment, shard_range
from ssdkd.engine.run_state import load_run_state, remove_stale_checkpoints
from ssdkd.methods import METHODS
from ssdkd.methods.parallel import DataParallel
from ssdkd.models import create_model
from ssdkd.sampling import all_reduce_sum, global_class_counts, global_mean_normalized
from tests.distributed_worker import TINY

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


def test_end_process_flushes_output_and_skips_interpreter_finalisation(tmp_path: Path) -> None:
    """Prevents a finished torchrun run from aborting at exit (exit code -6, "terminate
    called without an active exception"): gloo threads still freeing tensors of finished
    collectives were ended by the interpreter's finalisation, so the process must exit
    without finalising, its status and buffered output intact."""
    marker = tmp_path / "finalised"
    script = (
        "import atexit, pathlib, sys\n"
        "from ssdkd.engine.distributed import end_process\n"
        f"atexit.register(pathlib.Path({str(marker)!r}).touch)\n"
        "sys.stdout.write('written, not yet flushed')\n"
        "end_process(3)\n"
        "print('never reached')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout == "written, not yet flushed"
    assert not marker.exists()  # atexit handlers (finalisation) did not run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """``torchrun --nproc-per-node 2 tests/distributed_worker.py ARGS`` on this machine."""
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
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def torchrun(scenario: str, out: Path, *args: str) -> list[dict[str, Any]]:
    result = launch(scenario, str(out), *args)
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


# ---------------------------------------------------------------- data-parallel methods
METHOD_ROUNDS = {name: config.rounds for name, config in TINY.items()}
"""Every registered method (``distributed_worker.TINY`` covers the registry)."""
KD_STEPS = {"ssd-kd": 12, "fast-dfkd": 9, "deepinversion": 9, "noise-control": 9}
"""(rounds − warm-up rounds) × 3 KD steps, where a round is one synthesis and its KD
steps; every other method is held to the count its round plans give."""
GENERATOR = {"ssd-kd", "fast-dfkd", "dafl", "dfad", "dfq", "zskt"}
IMAGES = {
    "ssd-kd": [16, 32, 48, 64, 80],
    "fast-dfkd": [16, 32, 48, 64],
    "deepinversion": [16, 32, 48],
    "noise-control": [32, 32, 32],  # its 32-image pool, drawn once
    "real-data": [0] * TINY["real-data"].rounds,
}
"""The global count of images synthesised after each round: each rank synthesises its
own half of every batch."""


def test_every_registered_method_runs_on_two_processes() -> None:
    """Prevents a new method from escaping the 2-process equality test: the worker's
    budgets, and so the test's parameters, cover the whole registry."""
    assert set(TINY) == set(METHODS)


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One uninterrupted 2-process run per method (see ``distributed_worker.TINY``)."""
    runs = {}
    for method in METHOD_ROUNDS:
        out = tmp_path_factory.mktemp(method)
        torchrun("distill", out, method, str(out / "run"))
        runs[method] = out
    return runs


def without_seconds(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if not k.endswith("_seconds")} for r in history]


@pytest.mark.slow
@pytest.mark.parametrize("method", list(METHOD_ROUNDS))
def test_two_processes_hold_one_student_and_generator_after_every_step(
    method: str, two_process_runs: dict[str, Path]
) -> None:
    out = two_process_runs[method]
    last = METHOD_ROUNDS[method]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    for rank in ranks:
        assert rank["steps"] == KD_STEPS.get(method, rank["planned_steps"])
        assert rank["steps"] == rank["planned_steps"]
        assert rank["syntheses"] == rank["planned_syntheses"]
        # Student, optimiser and schedule after every step; meta generator, its optimiser
        # and the BN-statistics EMA after every synthesis.
        assert rank["student_differs"] == 0
        assert rank["generator_differs"] == 0
        assert rank["syntheses_with_generator"] == (
            rank["planned_syntheses"] if method in GENERATOR else 0
        )
        # The split evaluation equals one process evaluating the whole held-out set.
        assert rank["final_accuracy"] == rank["whole_set_accuracy"]
    assert ranks[0]["student"] == ranks[1]["student"]
    assert without_seconds(ranks[0]["history"]) == without_seconds(ranks[1]["history"])
    # Rank 0 alone writes the log: one line per round, not one per rank.
    lines = (out / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["round"] for line in lines] == list(
        range(1, METHOD_ROUNDS[method] + 1)
    )
    if method in IMAGES:
        assert [r["images_synthesized"] for r in ranks[0]["history"]] == IMAGES[method]
    files = sorted(p.name for p in (out / "run" / "checkpoints").iterdir())
    assert files == [
        "best.pt",
        f"last-rank0-of-2-round{last}.pt",
        f"last-rank1-of-2-round{last}.pt",
        "manifest.pt",
    ]


@pytest.mark.slow
def test_ssd_kd_shards_its_buffer(two_process_runs: dict[str, Path]) -> None:
    out = two_process_runs["ssd-kd"]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    # buffer_size 48 on 2 processes: 24 slots each, full after 3 rounds of 8 images.
    assert [(r["buffer_capacity"], r["buffer_size"]) for r in ranks] == [(24, 24), (24, 24)]
    assert [r["buffer_size"] for r in ranks[0]["history"]] == [16.0, 32.0, 48.0, 48.0, 48.0]
    # Own seed streams: no image is in both shards (nor twice in one).
    assert len(set(ranks[0]["images"]) | set(ranks[1]["images"])) == 48


@pytest.mark.slow
def test_importance_weights_are_those_of_the_global_batch(
    two_process_runs: dict[str, Path],
) -> None:
    """Each rank's weights must be the one-process weights of the union of the shares."""
    ranks = [
        json.loads((two_process_runs["ssd-kd"] / f"rank{r}.json").read_text()) for r in range(2)
    ]
    beta = ranks[0]["weights"]["beta"]
    # A draw of rank r has P = p / 2 (p: its probability within the rank's shard).
    p = torch.tensor([q for r in ranks for q in r["weights"]["probabilities"]], dtype=torch.float64)
    big_p = p / 2
    everywhere_min = min(r["weights"]["shard_min_probability"] for r in ranks) / 2
    batch = (big_p / big_p.min()) ** -beta
    expected = {
        "max": (big_p / everywhere_min) ** -beta,
        "batch": batch,
        "mean": batch / batch.mean(),
    }
    assert float(expected["max"].std()) > 0  # the test can tell the norms apart
    for norm, reference in expected.items():
        got = torch.tensor([w for r in ranks for w in r["weights"][norm]], dtype=torch.float64)
        torch.testing.assert_close(got, reference, rtol=1e-6, atol=0)


@pytest.mark.slow
def test_a_dead_rank_ends_the_job_and_resume_finishes_bit_identical(
    tmp_path: Path, two_process_runs: dict[str, Path]
) -> None:
    """Regression guard: a rank that crashes must end the job (no hang), and the run
    must resume from the last manifest to the uninterrupted run's student."""
    run = tmp_path / "run"
    start = time.monotonic()
    crashed = launch("distill", str(tmp_path), "ssd-kd", str(run), "--die-in-round", "3")
    assert time.monotonic() - start < 60  # ended, not hung until the collective timeout
    assert crashed.returncode != 0
    assert "exitcode  : 3" in crashed.stderr  # torchrun names the rank that died
    assert load_checkpoint(run / "checkpoints" / "manifest.pt", kind="manifest")["round"] == 3
    resumed = torchrun("distill", tmp_path, "ssd-kd", str(run), "--resume")
    reference = json.loads((two_process_runs["ssd-kd"] / "rank0.json").read_text())
    for rank in resumed:
        assert rank["student"] == reference["student"]
        assert rank["student_differs"] == 0
        assert without_seconds(rank["history"]) == without_seconds(reference["history"])


@pytest.mark.slow
def test_resuming_with_another_number_of_processes_is_refused(
    two_process_runs: dict[str, Path],
) -> None:
    run = two_process_runs["ssd-kd"] / "run"
    before = sorted((run / "checkpoints").iterdir())
    teacher = create_model("tiny_cnn", num_classes=10, in_channels=1, image_size=8)
    student = create_model("tiny_cnn", num_classes=10, in_channels=1, image_size=8)
    with pytest.raises(CheckpointError, match=r"run on 2 process\(es\), and this run has 1"):
        ssdkd.distill(
            teacher,
            student,
            "ssd-kd",
            num_classes=10,
            image_shape=(1, 8, 8),
            normalization=((0.3,), (0.4,)),
            config=TINY["ssd-kd"],
            seed=11,
            run_dir=run,
            resume=True,
            progress=False,
        )
    assert sorted((run / "checkpoints").iterdir()) == before  # nothing deleted


def test_a_single_process_checkpoint_is_refused_by_two_processes(tmp_path: Path) -> None:
    atomic_save({"kind": "run", "round": 1}, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=r"run on 1 process\(es\), and this run has 2"):
        load_run_state(tmp_path, DataParallel(rank=1, world_size=2))


def test_a_manifest_naming_another_round_is_refused(tmp_path: Path) -> None:
    """Regression guard: a rank file left from another round must not be resumed from."""
    atomic_save(
        {"kind": "manifest", "round": 4, "world_size": 2, "files": ["a.pt", "b.pt"]},
        tmp_path / "manifest.pt",
    )
    atomic_save({"kind": "run", "round": 3, "rank": 1, "version": 3}, tmp_path / "b.pt")
    with pytest.raises(CheckpointError, match="holds round 3 of rank 1, but"):
        load_run_state(tmp_path, DataParallel(rank=1, world_size=2))


def test_a_one_process_run_removes_files_it_can_never_resume_from(tmp_path: Path) -> None:
    """Regression guard: a multi-process manifest left in a run directory that a
    one-process run reuses must not later be taken for that run's checkpoint."""
    for name in ("manifest.pt", "last-rank0-of-2-round3.pt", ".last.pt.x1.tmp"):
        atomic_save({"kind": "manifest" if name == "manifest.pt" else "run"}, tmp_path / name)
    atomic_save({"kind": "run"}, tmp_path / "last.pt")
    remove_stale_checkpoints(tmp_path, DataParallel.single())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]

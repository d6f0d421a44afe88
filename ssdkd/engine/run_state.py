"""Checkpoints of a run: what they hold, how they are written atomically (one file, or one
per rank and a manifest), and the checks that refuse to resume another run's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from ssdkd.engine.blobs import load_with_blobs, remove_unreferenced_blobs, save_with_blobs
from ssdkd.engine.checkpoint import CheckpointError, atomic_save, load_checkpoint
from ssdkd.methods import DistillationMethod
from ssdkd.methods.parallel import DataParallel
from ssdkd.methods.registry import drop_retired_fields

__all__ = [
    "CHECKPOINT_VERSION",
    "agree_on_resume",
    "check_same_run",
    "claim_run_dir",
    "held_run",
    "load_run_state",
    "most_accurate_round",
    "remove_stale_checkpoints",
    "repair_best",
    "rng_state",
    "save_best",
    "save_run_state",
    "set_rng_state",
]

CHECKPOINT_VERSION = 4
# Version 1 also stored the best round's student weights and accuracy. A version-1 file
# still resumes: those entries are ignored, the best round is read from the history.
# Version 3 added the count of consecutive skipped KD steps; older files resume with 0.
# Version 4 stores tensors of 1 MiB or more as blobs (ssdkd.engine.blobs); older files
# hold every tensor inline and still load.
_READABLE_CHECKPOINT_VERSIONS = (1, 2, 3, CHECKPOINT_VERSION)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


_NETWORKS = {
    "teacher_fingerprint": "another teacher (its weights differ)",
    "student_architecture": "another student architecture",
}


def check_same_run(
    stored: dict[str, Any], current: dict[str, Any], path: Path, defaults: dict[str, Any]
) -> None:
    """Refuse to resume a checkpoint of another run, naming what differs.

    A config field the checkpoint does not record (one added to the library after it was
    written) counts at its value in ``defaults``, the behaviour the run had; a field the
    library has retired as one that never had an effect is not compared.
    """
    stored = drop_retired_fields(stored)
    stored = {**{k: v for k, v in defaults.items() if k not in stored}, **stored}
    for key, what in _NETWORKS.items():
        # Checkpoints before version 3 hold no fingerprints: nothing to compare.
        if key in stored and stored[key] != current[key]:
            raise CheckpointError(
                f"checkpoint file {str(path)!r} was made with {what}: fingerprint "
                f"{stored[key]} in the checkpoint, {current[key]} now; resume with the same "
                "networks or choose a new run directory"
            )
    comparable = {k: v for k, v in current.items() if k in stored or k not in _NETWORKS}
    if stored != comparable:
        keys = set(stored) | set(comparable)
        differ = sorted(k for k in keys if stored.get(k) != comparable.get(k))
        values = "; ".join(
            f"{k}: {stored.get(k)!r} in the checkpoint, {comparable.get(k)!r} now" for k in differ
        )
        why = (
            " (a run's rounds fix its learning-rate schedule and synthesis window, so a "
            "longer run is another run, not a continuation)"
            if "rounds" in differ
            else ""
        )
        raise CheckpointError(
            f"checkpoint file {str(path)!r} belongs to a run with another config (differs "
            f"in {', '.join(differ)}: {values}){why}; resume with the same settings or "
            "choose a new run directory"
        )


def save_best(
    method: DistillationMethod, round_number: int, accuracy: float | None, path: Path
) -> None:
    atomic_save(
        {
            "kind": "student",
            "round": round_number,
            "accuracy": accuracy,
            "state_dict": method.student.state_dict(),
        },
        path,
    )


def repair_best(method: DistillationMethod, history: list[dict[str, Any]], path: Path) -> None:
    """Make ``best.pt`` agree with the resumed history.

    ``last.pt`` is written before ``best.pt``, so a crash between the two leaves a history
    whose best round is the checkpoint's own round and a ``best.pt`` of an earlier one; the
    student just loaded is that round's, so ``best.pt`` is rewritten from it.
    """
    best_accuracy, best_round = most_accurate_round(history)
    if best_round is None or best_round != int(history[-1]["round"]):
        return
    stored = load_checkpoint(path, kind="student") if path.exists() else None
    if stored is None or int(stored["round"]) != best_round:
        save_best(method, best_round, best_accuracy, path)


def most_accurate_round(history: list[dict[str, Any]]) -> tuple[float | None, int | None]:
    """``(accuracy, round)`` of the most accurate round so far, the earliest on ties."""
    best: tuple[float | None, int | None] = (None, None)
    for record in history:
        accuracy = record.get("accuracy")
        if accuracy is not None and (best[0] is None or accuracy > best[0]):
            best = (accuracy, int(record["round"]))
    return best


_MANIFEST = "manifest.pt"
"""With several processes: the file naming the round and every rank's checkpoint file."""


def _rank_file(rank: int, world_size: int, round_number: int) -> str:
    return f"last-rank{rank}-of-{world_size}-round{round_number}.pt"


def _blob_dir(checkpoints: Path, rank: int, world_size: int) -> Path:
    """Where a rank's checkpoint keeps its large tensors (one directory per rank)."""
    if world_size == 1:
        return checkpoints / "blobs"
    return checkpoints / f"blobs-rank{rank}-of-{world_size}"


def _world_size_error(path: Path, stored: int, current: int) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {str(path)!r} was written by a run on {stored} process(es), and this "
        f"run has {current}; resume with {stored} process(es) (a sharded buffer cannot be "
        "split differently without changing which items each rank draws) or choose a new "
        "run directory"
    )


def load_run_state(checkpoints: Path, parallel: DataParallel) -> dict[str, Any] | None:
    """This rank's last complete checkpoint (``None`` if there is none), checked.

    One process reads ``last.pt``; several read the manifest and their own file of the
    round it names. A checkpoint of another number of processes is refused.
    """
    last, manifest = checkpoints / "last.pt", checkpoints / _MANIFEST
    if not parallel.active:
        if manifest.exists() and not last.exists():
            stored = load_checkpoint(manifest, kind="manifest")
            raise _world_size_error(manifest, int(stored["world_size"]), 1)
        if not last.exists():
            return None
        path = last
        state = load_with_blobs(
            path, _blob_dir(checkpoints, parallel.rank, parallel.world_size), kind="run"
        )
    else:
        if last.exists():
            raise _world_size_error(last, 1, parallel.world_size)
        if not manifest.exists():
            return None
        stored = load_checkpoint(manifest, kind="manifest")
        if int(stored["world_size"]) != parallel.world_size:
            raise _world_size_error(manifest, int(stored["world_size"]), parallel.world_size)
        path = checkpoints / str(stored["files"][parallel.rank])
        state = load_with_blobs(
            path, _blob_dir(checkpoints, parallel.rank, parallel.world_size), kind="run"
        )
        if int(state["round"]) != int(stored["round"]) or state.get("rank") != parallel.rank:
            raise CheckpointError(
                f"checkpoint file {str(path)!r} holds round {state['round']} of rank "
                f"{state.get('rank')}, but {str(manifest)!r} names round {stored['round']} "
                f"of rank {parallel.rank}"
            )
    if state.get("version") not in _READABLE_CHECKPOINT_VERSIONS:
        raise CheckpointError(
            f"checkpoint file {str(path)!r} has version {state.get('version')!r}, "
            f"expected one of {_READABLE_CHECKPOINT_VERSIONS}"
        )
    return {**state, "path": path}


def agree_on_resume(
    parallel: DataParallel, error: CheckpointError | None, resuming: bool, device: torch.device
) -> None:
    """Raise on every rank if any rank could not resume, or if they disagree on resuming."""
    if not parallel.active:
        if error is not None:
            raise error
        return
    flags = parallel.sum(
        torch.tensor([int(error is not None), int(resuming)], dtype=torch.long, device=device)
    )
    failed, found = (int(v) for v in flags.tolist())
    if error is not None:
        raise error
    if failed:
        raise CheckpointError(f"{failed} other process(es) could not resume; see their error")
    if 0 < found < parallel.world_size:
        raise CheckpointError(
            f"{found} of {parallel.world_size} processes found a checkpoint to resume from "
            "and the others did not: the run directory must be on a file system that every "
            "process shares"
        )


def remove_stale_checkpoints(checkpoints: Path, parallel: DataParallel) -> None:
    """Delete checkpoint files this run can never resume from (rank 0, then a barrier).

    Those of the other layout (``last.pt`` under several processes; the manifest and the
    rank files under one), rank files the manifest does not name (another world size, or
    a crash before the manifest), and temporary files a crash left mid-write.
    """
    if parallel.is_main and checkpoints.is_dir():
        manifest = checkpoints / _MANIFEST
        keep: set[str] = set()
        if parallel.active:
            (checkpoints / "last.pt").unlink(missing_ok=True)
            if manifest.exists():
                keep = {str(name) for name in load_checkpoint(manifest, kind="manifest")["files"]}
        else:
            manifest.unlink(missing_ok=True)
        for path in [*checkpoints.glob("last-rank*-of-*.pt"), *checkpoints.glob(".*.tmp")]:
            if path.name not in keep:
                path.unlink(missing_ok=True)
        world = parallel.world_size
        blob_dirs = {_blob_dir(checkpoints, r, world).name for r in range(world)}
        for path in checkpoints.glob("blobs*"):
            if path.name not in blob_dirs:
                shutil.rmtree(path, ignore_errors=True)
    parallel.barrier()


def save_run_state(checkpoints: Path, parallel: DataParallel, state: dict[str, Any]) -> None:
    """Write the round's checkpoint atomically.

    One process writes ``last.pt``. Several write one file per rank and round; once every
    rank's file is in place, rank 0 replaces the manifest (the commit point: a crash
    before it leaves the previous manifest, whose files are still there), and then each
    rank deletes its files of earlier rounds. Tensors of 1 MiB or more go to the rank's
    blob directory, each written once (:mod:`ssdkd.engine.blobs`); the blobs the new
    checkpoint does not name are deleted after it is committed.
    """
    blob_dir = _blob_dir(checkpoints, parallel.rank, parallel.world_size)
    if not parallel.active:
        referenced = save_with_blobs(state, checkpoints / "last.pt", blob_dir)
        remove_unreferenced_blobs(blob_dir, referenced)
        return
    round_number, world = int(state["round"]), parallel.world_size
    name = _rank_file(parallel.rank, world, round_number)
    referenced = save_with_blobs(
        {**state, "rank": parallel.rank, "world_size": world}, checkpoints / name, blob_dir
    )
    parallel.barrier()
    if parallel.is_main:
        atomic_save(
            {
                "kind": "manifest",
                "round": round_number,
                "world_size": world,
                "files": [_rank_file(r, world, round_number) for r in range(world)],
            },
            checkpoints / _MANIFEST,
        )
    parallel.barrier()
    for old in checkpoints.glob(f"last-rank{parallel.rank}-of-{world}-round*.pt"):
        if old.name != name:
            old.unlink(missing_ok=True)
    remove_unreferenced_blobs(blob_dir, referenced)


_RUN_FILES = ("config.json", "metrics.jsonl", "synthetic.pt")


def held_run(directory: Path) -> str | None:
    """A sentence naming the run ``directory`` holds, or ``None`` if it holds none."""
    checkpoints = directory / "checkpoints"
    found = [name for name in _RUN_FILES if (directory / name).exists()]
    if checkpoints.is_dir() and any(checkpoints.iterdir()):
        found.append("checkpoints/")
    if not found:
        return None
    what = ""
    try:
        config = json.loads((directory / "config.json").read_text())
        rounds = sum(1 for _ in (directory / "metrics.jsonl").open())
        what = f" ({config.get('method')}, {rounds} of {config.get('rounds')} rounds logged)"
    except (OSError, ValueError, AttributeError):
        pass
    return f"run directory {str(directory)!r} already holds a run{what}: {', '.join(found)}"


def claim_run_dir(
    directory: Path, *, resume: bool, overwrite: bool, parallel: DataParallel, device: Any
) -> None:
    """Make ``directory`` this run's: refuse one that holds another run, or clear it.

    A fresh run (``resume`` false) in a directory holding a run's files raises, unless
    ``overwrite`` is given, which deletes those files first. Rank 0 decides (before any
    rank writes) and every rank raises or goes on together.

    Raises:
        FileExistsError: The directory holds a run and neither ``resume`` nor
            ``overwrite`` is given; the message names the run and both ways out.
    """
    if resume:
        return
    held = held_run(directory) if parallel.is_main else None
    refused = held is not None and not overwrite
    flag = parallel.max(torch.tensor(int(refused), device=device))
    if int(flag):
        raise FileExistsError(
            f"{held or f'run directory {str(directory)!r} already holds a run'}; pass "
            "resume=True (--resume) to continue it, overwrite=True (--overwrite) to replace "
            "it, or choose another directory"
        )
    if held is not None and parallel.is_main:
        shutil.rmtree(directory / "checkpoints", ignore_errors=True)
        shutil.rmtree(directory / "tensorboard", ignore_errors=True)
        for name in _RUN_FILES:
            (directory / name).unlink(missing_ok=True)
    parallel.barrier()

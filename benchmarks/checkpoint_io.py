"""Bytes and seconds a run's checkpoints write as its transfer pool grows.

A pool that only appends (Fast-DFKD, DeepInversion) is checkpointed every round. The
library's checkpoint (``save_run_state``: tensors of 1 MiB or more as blobs named by
their content, the pool in blocks of ``TransferPool.BLOCK`` images) is compared with a
single ``atomic_save`` of the same state, the whole pool inline, in the same process and
on the same directory. Each round adds ``--per-round`` random images to a pool and
writes both checkpoints; the report gives the bytes each wrote over the run and the
median seconds per checkpoint over the last ``--tail`` rounds, where the pool is largest.

    python benchmarks/checkpoint_io.py                      # Fashion-MNIST scale (a minute)
    python benchmarks/checkpoint_io.py --quick --out /tmp/c.json --markdown /tmp/c.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import command_line, machine_info, machine_line, write_section

from ssdkd.engine.checkpoint import atomic_save
from ssdkd.engine.run_state import save_run_state
from ssdkd.methods.common import TransferPool
from ssdkd.methods.parallel import DataParallel

ROOT = Path(__file__).resolve().parent.parent


def _written(directory: Path) -> int:
    return sum(size for _, size in _files(directory).values())


def _files(directory: Path) -> dict[Path, tuple[int, int]]:
    """Every file under ``directory``: (modification time in ns, size in bytes)."""
    return {
        p: (p.stat().st_mtime_ns, p.stat().st_size) for p in directory.rglob("*") if p.is_file()
    }


def measure(rounds: int, per_round: int, shape: tuple[int, ...], tail: int) -> dict[str, Any]:
    """Grow a pool for ``rounds`` rounds; checkpoint it both ways after each."""
    pool = TransferPool(0, torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(1)
    written = {"blobs": 0, "inline": 0}
    seconds: dict[str, list[float]] = {"blobs": [], "inline": []}
    with tempfile.TemporaryDirectory() as tmp:
        blobs_dir, inline_dir = Path(tmp) / "blobs-run", Path(tmp) / "inline-run"
        blobs_dir.mkdir()
        inline_dir.mkdir()
        for round_index in range(rounds):
            pool.add(
                torch.rand(per_round, *shape, generator=gen),
                torch.randint(0, 10, (per_round,), generator=gen),
            )
            state = {"kind": "run", "round": round_index + 1, "pool": pool.state_dict()}
            for name in ("blobs", "inline"):
                directory = blobs_dir if name == "blobs" else inline_dir
                files = _files(directory)
                before = time.perf_counter()
                if name == "blobs":
                    save_run_state(directory, DataParallel.single(), state)
                else:
                    atomic_save(state, directory / "last.pt")
                seconds[name].append(time.perf_counter() - before)
                # A file is written anew when it is new or its modification time changed.
                written[name] += sum(
                    size
                    for path, (mtime, size) in _files(directory).items()
                    if files.get(path, (None, 0))[0] != mtime
                )
        final = {"blobs": _written(blobs_dir), "inline": _written(inline_dir)}
    return {
        "rounds": rounds,
        "per_round": per_round,
        "shape": list(shape),
        "pool_mib": pool.images.numel() * 4 / 2**20 if pool.images is not None else 0.0,
        "written_mib": {k: v / 2**20 for k, v in written.items()},
        "on_disk_mib": {k: v / 2**20 for k, v in final.items()},
        "median_seconds_last": {k: statistics.median(v[-tail:]) for k, v in seconds.items()},
    }


def markdown(results: dict[str, Any]) -> str:
    r = results["result"]
    shape = "×".join(map(str, r["shape"]))
    blobs, inline = r["written_mib"]["blobs"], r["written_mib"]["inline"]
    t_blobs, t_inline = r["median_seconds_last"]["blobs"], r["median_seconds_last"]["inline"]
    return "\n".join(
        [
            f"Command: `{results['command']}`; {machine_line(results['machine'])}; "
            f"{results['date']}.",
            "",
            f"A pool growing by {r['per_round']} images of {shape} a round for "
            f"{r['rounds']} rounds ({r['pool_mib']:.0f} MiB at the end), checkpointed "
            "after every round:",
            "",
            "| checkpoint | written over the run | median seconds per checkpoint, "
            f"last {results['tail']} rounds |",
            "|---|---|---|",
            f"| whole state in one file | {inline:,.0f} MiB | {t_inline:.3f} |",
            f"| large tensors as blobs (the library's) | {blobs:,.0f} MiB | {t_blobs:.3f} |",
            "",
            f"Ratio of bytes written: {inline / blobs:.1f}×; of median seconds: "
            f"{t_inline / t_blobs:.1f}×. Both hold the same state on disk "
            f"({r['on_disk_mib']['inline']:.0f} and {r['on_disk_mib']['blobs']:.0f} MiB).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--per-round", type=int, default=128)
    parser.add_argument("--shape", type=int, nargs="+", default=[1, 28, 28])
    parser.add_argument("--tail", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="10 rounds (smoke test)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "results" / "checkpoint_io.json"))
    parser.add_argument("--markdown", default=str(ROOT / "docs" / "results.md"))
    args = parser.parse_args()
    rounds, tail = (10, 5) if args.quick else (args.rounds, args.tail)
    results = {
        "command": command_line(),
        "machine": machine_info(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "tail": tail,
        "result": measure(rounds, args.per_round, tuple(args.shape), tail),
    }
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    write_section(Path(args.markdown), "checkpoint-io", markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()

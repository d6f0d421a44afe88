"""A process of the ``torchrun`` tests: runs one scenario, writes ``rank<R>.json``.

python -m torch.distributed.run --nproc-per-node 2 tests/distributed_worker.py SCENARIO OUT
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

from ssdkd.engine.distributed import init_from_environment, shard_range
from ssdkd.sampling import all_reduce_sum, global_class_counts, global_mean_normalized


def collectives(rank: int, world: int) -> dict[str, object]:
    counts = torch.tensor([rank + 1, 0, 10 * rank])
    weights = torch.arange(1.0, 2.0 + rank)  # rank 0: [1], rank 1: [1, 2]
    start, stop = shard_range(7, rank, world)
    return {
        "counts": global_class_counts(counts).tolist(),
        "weights": global_mean_normalized(weights).tolist(),
        "sum": all_reduce_sum(torch.tensor([float(rank)])).item(),
        "shard": [start, stop],
    }


def dead_rank(rank: int, world: int) -> dict[str, object]:
    dist.barrier()  # every rank is connected: rank 1 now dies mid-job, not during start-up
    if rank == 1:
        return {"left": True}  # leaves without taking part in the collective
    start = time.monotonic()
    try:
        all_reduce_sum(torch.ones(1))
    except Exception as error:  # the collective must fail, not hang
        return {"error": type(error).__name__, "seconds": time.monotonic() - start}
    return {"error": None, "seconds": time.monotonic() - start}


def main() -> None:
    scenario, out = sys.argv[1], Path(sys.argv[2])
    info = init_from_environment(backend="gloo", timeout_s=20.0)
    assert info is not None
    result = {"scenario": scenario, "rank": info.rank, "world": info.world_size}
    result |= {"collectives": collectives, "dead-rank": dead_rank}[scenario](
        info.rank, info.world_size
    )
    (out / f"rank{info.rank}.json").write_text(json.dumps(result))
    if scenario == "collectives":
        dist.destroy_process_group()


if __name__ == "__main__":
    main()

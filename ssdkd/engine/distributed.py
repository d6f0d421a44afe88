"""The process group of a ``torchrun`` launch, detected from the environment.

``torchrun`` (and any launcher following its convention) sets ``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in every process. Without them, or with
``WORLD_SIZE=1``, a run is single-process and nothing changes.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

import torch
import torch.distributed as dist

from ssdkd.methods.parallel import shard_range

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ProcessGroupInfo",
    "end_process",
    "init_from_environment",
    "shard_range",
]

DEFAULT_TIMEOUT_S = 300.0
"""Seconds a collective waits for the other ranks before failing (never a silent hang)."""


@dataclass(frozen=True)
class ProcessGroupInfo:
    """Where this process stands in a data-parallel job."""

    rank: int
    """Global rank in ``[0, world_size)``."""
    world_size: int
    """Number of processes in the job."""
    local_rank: int
    """Rank on this node (selects the GPU)."""
    backend: str
    """The process group's backend: ``"gloo"``, ``"nccl"`` or ``"cpu:gloo,cuda:nccl"``."""

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the one that writes logs, plots and the progress bar."""
        return self.rank == 0


def _env_int(env: Mapping[str, str], name: str, low: int, high: int | None) -> int:
    raw = env.get(name)
    if raw is None:
        raise ValueError(f"Expected environment variable {name} to be set (torchrun sets it)")
    try:
        value = int(raw)
    except ValueError:
        message = f"Expected environment variable {name} to be an int, got {raw!r}"
        raise ValueError(message) from None
    if value < low or (high is not None and value >= high):
        bound = f"[{low}, {high})" if high is not None else f">= {low}"
        raise ValueError(f"Expected environment variable {name} in {bound}, got {value}")
    return value


def init_from_environment(
    *,
    backend: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
) -> ProcessGroupInfo | None:
    """Join the process group that ``torchrun`` describes in the environment.

    Args:
        backend: ``"nccl"`` or ``"gloo"``; default: NCCL for CUDA tensors and gloo for CPU
            tensors when CUDA is available (each rank then uses the GPU of its local
            rank), else gloo.
        timeout_s: Seconds a collective waits for the other ranks before it raises.
        env: The environment to read (default: ``os.environ``).

    Returns:
        The rank's :class:`ProcessGroupInfo`, or ``None`` for a single-process run
        (``WORLD_SIZE`` unset or 1). An already initialised default group is reused.

    Raises:
        ValueError: A torchrun variable is missing or malformed, or a bad argument.
    """
    env = os.environ if env is None else env
    if (
        isinstance(timeout_s, bool)
        or not isinstance(timeout_s, (int, float))
        or not 0 < timeout_s < math.inf
    ):
        raise ValueError(f"Expected `timeout_s` to be a finite number > 0, got {timeout_s!r}")
    if backend not in (None, "nccl", "gloo"):
        raise ValueError(f"Expected `backend` in (None, 'nccl', 'gloo'), got {backend!r}")
    if "WORLD_SIZE" not in env:
        return None
    world_size = _env_int(env, "WORLD_SIZE", 1, None)
    if world_size == 1:
        return None
    rank = _env_int(env, "RANK", 0, world_size)
    local_rank = _env_int(env, "LOCAL_RANK", 0, world_size)
    if backend is None:
        # With CUDA: NCCL for CUDA tensors and gloo for CPU ones (class histograms of a
        # CPU buffer, say); each rank drives the GPU of its local rank.
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    if "nccl" in backend and local_rank < torch.cuda.device_count():
        # (More processes than GPUs: a CPU run on a GPU machine; NCCL is then never used.)
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        address = env.get("MASTER_ADDR")
        port = _env_int(env, "MASTER_PORT", 1, 65536)
        if not address:
            raise ValueError(
                "Expected environment variable MASTER_ADDR to be set (torchrun sets it)"
            )
        host = f"[{address}]" if ":" in address and not address.startswith("[") else address
        dist.init_process_group(
            backend=backend,
            init_method=f"tcp://{host}:{port}",
            rank=rank,
            world_size=world_size,
            timeout=timedelta(seconds=timeout_s),
        )
    elif dist.get_world_size() != world_size or dist.get_rank() != rank:
        raise ValueError(
            f"Expected the initialised process group to match WORLD_SIZE={world_size} and "
            f"RANK={rank}, got world size {dist.get_world_size()} and rank {dist.get_rank()}"
        )
    else:
        backend = str(dist.get_backend())
    return ProcessGroupInfo(rank, world_size, local_rank, backend)


def end_process(status: int = 0) -> NoReturn:
    """End a torchrun worker whose results are written, skipping interpreter finalisation.

    Every rank first passes a barrier (none leaves while another still needs it), the
    default process group is destroyed, the standard streams are flushed, and the process
    exits with ``status`` at once: ``atexit`` handlers and object finalisers do not run,
    so files must be closed before the call.

    Why not a plain exit: gloo (torch 2.13) frees a finished collective's work on its own
    threads, and freeing a tensor that Python knows takes the GIL. A gloo thread that asks
    for the GIL while the interpreter finalises is ended by Python, which aborts the
    whole process (``terminate called without an active exception``, exit code -6)
    after a run that finished; a barrier and ``destroy_process_group`` before a normal
    exit leave that window open (2 to 4 of 40 runs of a two-process benchmark worker).
    Without finalisation there is no window.

    Args:
        status: The process's exit status.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)

"""Data parallelism inside a method: shares, seeds and the reductions that keep ranks equal.

A :class:`DataParallel` says which rank of how many a method runs as, and performs the few
collectives that make N processes behave as one run on the global batch: gradient
averaging (with one global decision whether a step is applied), averaging of floating
buffers, and sums, minima and maxima of small tensors. With one process (the default,
:meth:`DataParallel.single`) every reduction returns its input, so a method has one code
path for both cases.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = ["DataParallel", "shard_range"]


def shard_range(total: int, rank: int, world_size: int) -> tuple[int, int]:
    """This rank's contiguous share ``[start, stop)`` of ``total`` items.

    The first ``total % world_size`` ranks get one item more, so shares differ by at most
    one and together cover ``[0, total)`` exactly once.

    Examples:
        >>> [shard_range(10, r, 3) for r in range(3)]
        [(0, 4), (4, 7), (7, 10)]
    """
    for name, value in (("total", total), ("rank", rank), ("world_size", world_size)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"Expected `{name}` to be an int, got {value!r}")
    if world_size < 1 or total < 0 or not 0 <= rank < world_size:
        raise ValueError(
            f"Expected total >= 0, world_size >= 1 and rank in [0, world_size), got "
            f"total={total}, rank={rank}, world_size={world_size}"
        )
    base, extra = divmod(total, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


@dataclass(frozen=True)
class DataParallel:
    """The rank a method runs as, and the collectives of a data-parallel step.

    Build it with :meth:`single` (one process) or :meth:`from_process_group` (inside an
    initialised ``torch.distributed`` default group, e.g. after
    :func:`~ssdkd.engine.distributed.init_from_environment`).

    Examples:
        >>> one = DataParallel.single()
        >>> one.active, one.share(128, "kd_batch_size")
        (False, 128)
        >>> one.sum(torch.tensor([1.0, 2.0]))
        tensor([1., 2.])
    """

    rank: int = 0
    """Global rank in ``[0, world_size)``."""
    world_size: int = 1
    """Number of processes."""

    def __post_init__(self) -> None:
        if (
            isinstance(self.world_size, bool)
            or not isinstance(self.world_size, int)
            or self.world_size < 1
        ):
            raise ValueError(f"Expected `world_size` to be an int >= 1, got {self.world_size!r}")
        if (
            isinstance(self.rank, bool)
            or not isinstance(self.rank, int)
            or not 0 <= self.rank < self.world_size
        ):
            raise ValueError(
                f"Expected `rank` to be an int in [0, {self.world_size}), got {self.rank!r}"
            )

    @classmethod
    def single(cls) -> DataParallel:
        """One process: every reduction is the identity."""
        return cls()

    @classmethod
    def from_process_group(cls) -> DataParallel:
        """The default process group's rank and size (one process without a group)."""
        if not (dist.is_available() and dist.is_initialized()):
            return cls()
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def active(self) -> bool:
        """Whether there is more than one process (collectives run)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the one that writes logs, plots and the progress bar."""
        return self.rank == 0

    def share(self, total: int, name: str) -> int:
        """This rank's equal share of a global batch of ``total`` items.

        Raises:
            ValueError: ``total`` is not divisible by the world size (``name`` is the
                config field, named in the message).
        """
        if total % self.world_size:
            raise ValueError(
                f"Expected `{name}` to be divisible by the number of processes "
                f"({self.world_size}), got {total}"
            )
        return total // self.world_size

    def broadcast_(self, module: nn.Module) -> None:
        """Give ``module`` rank 0's parameters and buffers, in place (nothing in one process)."""
        if self.active:
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)

    def barrier(self) -> None:
        """Wait until every rank arrives here (nothing in one process)."""
        if self.active:
            dist.barrier()

    # ------------------------------------------------------------------ reductions
    def _reduce(self, tensor: Tensor, op: dist.ReduceOp.RedOpType) -> Tensor:
        result = tensor.detach().clone()
        if self.active:
            dist.all_reduce(result, op=op)
        return result

    def sum(self, tensor: Tensor) -> Tensor:
        """Element-wise sum over the ranks (a copy of ``tensor`` in one process)."""
        return self._reduce(tensor, dist.ReduceOp.SUM)

    def min(self, tensor: Tensor) -> Tensor:
        """Element-wise minimum over the ranks."""
        return self._reduce(tensor, dist.ReduceOp.MIN)

    def max(self, tensor: Tensor) -> Tensor:
        """Element-wise maximum over the ranks."""
        return self._reduce(tensor, dist.ReduceOp.MAX)

    def _average_flat(
        self, tensors: Sequence[Tensor], dtype: torch.dtype, tail: Tensor | None = None
    ) -> Tensor:
        """Average ``tensors`` in place in one all-reduce of their concatenation in
        ``dtype``; ``tail`` (1-D) travels along and comes back summed, not averaged."""
        parts = [t.detach().reshape(-1).to(dtype) for t in tensors]
        if tail is not None:
            parts.append(tail.to(dtype))
        flat = torch.cat(parts)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for tensor in tensors:
            count = tensor.numel()
            tensor.detach().copy_(flat[offset : offset + count].view_as(tensor) / self.world_size)
            offset += count
        return flat[offset:]

    def average_(self, tensors: Sequence[Tensor]) -> None:
        """Replace each tensor by its mean over the ranks, in place, in one collective
        (in float64).

        The tensors must be floating and of the same shapes and dtypes on every rank.
        """
        tensors = [t for t in tensors if t.numel()]
        if self.active and tensors:
            self._average_flat(tensors, torch.float64)

    def average_gradients_(
        self, grads: Sequence[Tensor], loss: Tensor, also: Sequence[Tensor] = ()
    ) -> Tensor:
        """Average ``grads`` (and ``also``) over the ranks in place; whether every rank's
        loss is finite.

        One collective carries the gradients, the tensors of ``also`` (e.g. BatchNorm
        running statistics the forward pass just moved) and a count of non-finite losses,
        so every rank takes the same decision: a step is applied on all ranks or on none.
        A non-finite gradient on any rank makes the averaged gradient non-finite
        everywhere.

        Returns:
            A 0-dim bool tensor: ``isfinite(loss)`` on every rank.
        """
        finite = torch.isfinite(loss.detach())
        if not self.active:
            return finite
        tensors = [*grads, *also]
        # In the tensors' own precision (float32 for float32 models): half the traffic of
        # float64; the count of non-finite losses is a small integer, exact in any float.
        dtype = torch.float32
        for tensor in tensors:
            dtype = torch.promote_types(dtype, tensor.dtype)
        nonfinite = self._average_flat(tensors, dtype, tail=(~finite).reshape(1))
        return nonfinite[0] == 0

    def average_parameter_gradients_(self, parameters: Iterable[nn.Parameter]) -> None:
        """Average the ``.grad`` of ``parameters`` over the ranks (those that have one)."""
        self.average_([p.grad for p in parameters if p.grad is not None])

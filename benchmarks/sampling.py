"""Median µs of prioritized sampling: PriorityBuffer vs a flat torch.multinomial vector vs cpprb.

Each implementation holds N items with one int64 payload field and α = 0.6, β = 0.4. For
every (N, B) it times ``sample(B)``, ``update_priorities`` of the drawn items, ``extend`` by
B new items, and the full step (all three in a row), each as the median over ``--repeats``
calls, on one torch thread. cpprb is a comparison only and is used when installed.

    OMP_NUM_THREADS=1 python benchmarks/sampling.py            # full table
    OMP_NUM_THREADS=1 python benchmarks/sampling.py --quick    # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ssdkd.sampling import PriorityBuffer

ALPHA, BETA, EPS = 0.6, 0.4, 1e-6
HEADER = "| N | B | implementation | sample µs | update µs | extend µs | full step µs |"


class FlatMultinomial:
    """Baseline: priorities in one flat vector, sampled with ``torch.multinomial``."""

    def __init__(self, capacity: int, generator: torch.Generator) -> None:
        self.leaves = torch.zeros(capacity, dtype=torch.float64)
        self.payload = torch.zeros(capacity, dtype=torch.int64)
        self.capacity, self.size, self.cursor, self.generator = capacity, 0, 0, generator
        self.max_raw = 1.0

    def extend(self, x: torch.Tensor) -> None:
        slots = (torch.arange(x.shape[0]) + self.cursor) % self.capacity
        self.payload[slots] = x
        self.leaves[slots] = (self.max_raw + EPS) ** ALPHA
        self.cursor = (self.cursor + x.shape[0]) % self.capacity
        self.size = min(self.capacity, self.size + x.shape[0])

    def sample(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        live = self.leaves[: self.size]
        idx = torch.multinomial(live, batch, replacement=True, generator=self.generator)
        leaves = live[idx]
        weights = (leaves / live.min()) ** -BETA
        return self.payload[idx], idx, weights

    def update(self, idx: torch.Tensor, raw: torch.Tensor) -> None:
        self.leaves[idx] = (raw.double() + EPS) ** ALPHA
        self.max_raw = max(self.max_raw, float(raw.max()))


def median_us(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e3


def bench_priority_buffer(n: int, b: int, repeats: int) -> tuple[float, ...]:
    buf = PriorityBuffer(
        n, alpha=ALPHA, beta=BETA, eps=EPS, generator=torch.Generator().manual_seed(0)
    )
    for start in range(0, n, min(n, 65536)):
        chunk = min(n - start, 65536)
        buf.extend(x=torch.arange(chunk), priorities=torch.rand(chunk))
    new = torch.arange(b)
    raw = torch.rand(b)
    s = buf.sample(b)
    sample = median_us(lambda: buf.sample(b), repeats)
    update = median_us(
        lambda: buf.update_priorities(s.indices, raw, generations=s.generations), repeats
    )
    extend = median_us(lambda: buf.extend(x=new), repeats)

    def step() -> None:
        t = buf.sample(b)
        buf.update_priorities(t.indices, raw, generations=t.generations)
        buf.extend(x=new)

    return sample, update, extend, median_us(step, repeats)


def bench_flat(n: int, b: int, repeats: int) -> tuple[float, ...]:
    flat = FlatMultinomial(n, torch.Generator().manual_seed(0))
    flat.extend(torch.arange(n))
    new, raw = torch.arange(b), torch.rand(b)
    _, idx, _ = flat.sample(b)
    sample = median_us(lambda: flat.sample(b), repeats)
    update = median_us(lambda: flat.update(idx, raw), repeats)
    extend = median_us(lambda: flat.extend(new), repeats)

    def step() -> None:
        _, i, _ = flat.sample(b)
        flat.update(i, raw)
        flat.extend(new)

    return sample, update, extend, median_us(step, repeats)


def bench_cpprb(n: int, b: int, repeats: int) -> tuple[float, ...] | None:
    try:
        from cpprb import PrioritizedReplayBuffer
    except ImportError:
        return None
    rb = PrioritizedReplayBuffer(n, {"x": {"dtype": np.int64}}, alpha=ALPHA, eps=EPS)
    rb.add(x=np.arange(n))
    new = np.arange(b)
    raw = np.random.default_rng(0).random(b)
    idx = rb.sample(b, beta=BETA)["indexes"]
    sample = median_us(lambda: rb.sample(b, beta=BETA), repeats)
    update = median_us(lambda: rb.update_priorities(idx, raw), repeats)
    extend = median_us(lambda: rb.add(x=new), repeats)

    def step() -> None:
        s = rb.sample(b, beta=BETA)
        rb.update_priorities(s["indexes"], raw)
        rb.add(x=new)

    return sample, update, extend, median_us(step, repeats)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and repeats (smoke)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.batch_sizes, args.repeats = [1000], [64], 5
    torch.set_num_threads(1)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, numpy {np.__version__}, 1 thread, {args.repeats} repeats")
    print(HEADER)
    print("|---:|---:|---|---:|---:|---:|---:|")
    for n in args.sizes:
        for b in args.batch_sizes:
            if b > n:
                continue  # extend by B items needs B <= N
            rows = [
                ("PriorityBuffer", bench_priority_buffer(n, b, args.repeats)),
                ("flat + torch.multinomial", bench_flat(n, b, args.repeats)),
                ("cpprb PrioritizedReplayBuffer", bench_cpprb(n, b, args.repeats)),
            ]
            for name, result in rows:
                if result is not None:
                    cells = " | ".join(f"{t:.0f}" for t in result)
                    print(f"| {n:.0e} | {b} | {name} | {cells} |", flush=True)


if __name__ == "__main__":
    main()

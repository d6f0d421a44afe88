"""Median µs of prioritized sampling: PriorityBuffer vs a flat torch.multinomial vector vs cpprb.

Each implementation holds N items with one int64 payload field and α = 0.6, β = 0.4. For
every (N, B) it times ``sample(B)``, ``update_priorities`` of the drawn items, ``extend`` by
B new items, and the full step (all three in a row), each as the median over ``--repeats``
calls, on one torch thread. cpprb is a comparison only and is used when installed.

``numpy floor`` is a lower bound for any numpy implementation of PriorityBuffer's data
structure: the same tree layout (binary levels below a flat top row of at most 8,192 nodes,
stratified sorted draws) with nothing but the arithmetic: no input checks, no generations
or stale-update dropping, no guarded descent, no torch tensors in or out, weights
normalised by the batch's maximum. What PriorityBuffer costs above it is the price of its
guarantees and its torch interface; what the floor costs above cpprb is that of doing the
work in numpy calls rather than one compiled loop.

    OMP_NUM_THREADS=1 python benchmarks/sampling.py            # full table
    OMP_NUM_THREADS=1 python benchmarks/sampling.py --quick --out /tmp/s.json \
        --markdown /tmp/s.md                                     # smoke run (seconds)

Every row goes to ``--out`` (JSON, with the machine); the results page's section compares
the full step of PriorityBuffer with cpprb's at every (N, B) measured.

With ``--baseline DIR`` (a checkout of another version, e.g. ``git worktree add /tmp/base
HEAD~1``) that version's PriorityBuffer is timed too, in a fresh process per (N, B) right
after this version's, so a change is measured against its predecessor in the same run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import ssdkd
from ssdkd.sampling import PriorityBuffer

ROOT = Path(__file__).resolve().parents[1]

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


class NumpyFloor:
    """A sum tree in numpy arrays with only the arithmetic (the module docstring says why)."""

    TOP = 8192

    def __init__(self, capacity: int, rng: np.random.Generator) -> None:
        width = 1 << max(0, capacity - 1).bit_length()
        self.levels = [np.zeros(width)]  # leaves first, the top row last
        while self.levels[-1].size > self.TOP:
            self.levels.append(np.zeros(self.levels[-1].size // 2))
        self.payload = np.zeros(capacity, dtype=np.int64)
        self.capacity, self.size, self.cursor, self.rng = capacity, 0, 0, rng
        self.max_raw = 1.0

    def sample(self, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        top = self.levels[-1]
        bounds = np.empty(top.size)
        # torch's CPU cumsum: numpy's sequential scan, bit for bit, and faster.
        torch.cumsum(torch.from_numpy(top), 0, out=torch.from_numpy(bounds))
        total = bounds[-1]
        u = (np.arange(batch) + self.rng.random(batch)) * (total / batch)
        idx = np.minimum(np.searchsorted(bounds, u, side="right"), top.size - 1)
        rest = u - (bounds[idx] - top[idx])
        for level in reversed(self.levels[:-1]):
            idx = idx * 2
            left = level[idx]
            right = rest >= left
            rest -= left * right
            idx += right
        weights = (self.levels[0][idx] * (self.size / total)) ** -BETA
        return self.payload[idx], idx, weights / weights.max()

    def update(self, idx: np.ndarray, raw: np.ndarray) -> None:
        self.levels[0][idx] = (raw + EPS) ** ALPHA
        for below, above in itertools.pairwise(self.levels):
            idx = idx >> 1
            pairs = below.reshape(-1, 2)[idx]
            above[idx] = pairs[:, 0] + pairs[:, 1]  # a sum over axis 1 costs 5x more
        self.max_raw = max(self.max_raw, float(raw.max()))

    def extend(self, x: np.ndarray) -> None:
        slots = (np.arange(x.shape[0]) + self.cursor) % self.capacity
        self.payload[slots] = x
        self.update(slots, np.full(x.shape[0], self.max_raw))
        self.cursor = (self.cursor + x.shape[0]) % self.capacity
        self.size = min(self.capacity, self.size + x.shape[0])


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


def time_array_sampler(impl: Any, b: int, new: Any, raw: Any, repeats: int) -> tuple[float, ...]:
    """Time a baseline (:class:`FlatMultinomial`, :class:`NumpyFloor`) whose ``sample``
    returns ``(payload, indices, weights)``, with ``new`` and ``raw`` of its array type."""
    _, idx, _ = impl.sample(b)
    sample = median_us(lambda: impl.sample(b), repeats)
    update = median_us(lambda: impl.update(idx, raw), repeats)
    extend = median_us(lambda: impl.extend(new), repeats)

    def step() -> None:
        _, i, _ = impl.sample(b)
        impl.update(i, raw)
        impl.extend(new)

    return sample, update, extend, median_us(step, repeats)


def bench_flat(n: int, b: int, repeats: int) -> tuple[float, ...]:
    flat = FlatMultinomial(n, torch.Generator().manual_seed(0))
    flat.extend(torch.arange(n))
    return time_array_sampler(flat, b, torch.arange(b), torch.rand(b), repeats)


def bench_floor(n: int, b: int, repeats: int) -> tuple[float, ...]:
    floor = NumpyFloor(n, np.random.default_rng(0))
    floor.extend(np.arange(n))
    floor.update(np.arange(n), np.random.default_rng(1).random(n))
    raw = np.random.default_rng(0).random(b)
    return time_array_sampler(floor, b, np.arange(b), raw, repeats)


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


IMPLEMENTATIONS = ("priority-buffer", "floor", "flat", "cpprb")


def bench_baseline(checkout: Path, n: int, b: int, repeats: int) -> tuple[float, ...] | None:
    """Time ``checkout``'s PriorityBuffer with this script, in a fresh process."""
    command = [sys.executable, __file__, "--sizes", str(n), "--batch-sizes", str(b)]
    command += ["--repeats", str(repeats), "--implementations", "priority-buffer", "--rows-only"]
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    source = next((line for line in out.splitlines() if line.startswith("# ssdkd: ")), "")
    if not Path(source.removeprefix("# ssdkd: ")).resolve().is_relative_to(checkout.resolve()):
        raise RuntimeError(f"the baseline run imported {source!r}, not the one in {checkout}")
    rows = [line for line in out.splitlines() if line.startswith("|")]
    if len(rows) != 1:
        return None
    return tuple(float(cell) for cell in rows[0].strip("| \n").split("|")[3:])


def commit_of(checkout: Path) -> str:
    result = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or str(checkout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and repeats (smoke)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument(
        "--implementations", nargs="+", choices=IMPLEMENTATIONS, default=list(IMPLEMENTATIONS)
    )
    parser.add_argument("--baseline", type=Path, help="checkout of another version to compare")
    parser.add_argument("--rows-only", action="store_true", help="print the table rows only")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "sampling.json")
    parser.add_argument("--markdown", type=Path, default=ROOT / "docs" / "results.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.batch_sizes, args.repeats = [1000], [64], 5
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if args.rows_only:
        print(f"# ssdkd: {Path(ssdkd.__file__).parent}")
    else:
        versions = f"torch {torch.__version__}, numpy {np.__version__}"
        print(f"{versions}, 1 thread, {args.repeats} repeats")
        print(HEADER)
        print("|---:|---:|---|---:|---:|---:|---:|")
    benches: dict[str, tuple[str, Callable[[int, int, int], tuple[float, ...] | None]]] = {
        "priority-buffer": ("PriorityBuffer", bench_priority_buffer),
        "floor": ("numpy floor", bench_floor),
        "flat": ("flat + torch.multinomial", bench_flat),
        "cpprb": ("cpprb PrioritizedReplayBuffer", bench_cpprb),
    }
    measured: list[dict[str, Any]] = []
    for n in args.sizes:
        for b in args.batch_sizes:
            if b > n:
                continue  # extend by B items needs B <= N
            rows = [
                (benches[key][0], benches[key][1](n, b, args.repeats))
                for key in IMPLEMENTATIONS
                if key in args.implementations
            ]
            if args.baseline is not None:
                label = f"PriorityBuffer at {commit_of(args.baseline)}"
                rows.insert(1, (label, bench_baseline(args.baseline, n, b, args.repeats)))
            for name, result in rows:
                if result is not None:
                    cells = " | ".join(f"{t:.0f}" for t in result)
                    print(f"| {n:.0e} | {b} | {name} | {cells} |", flush=True)
                    measured.append({"n": n, "b": b, "implementation": name, "us": list(result)})
    if args.rows_only:
        return
    # Imported here: the tests import this module as ``benchmarks.sampling`` too.
    from _common import command_line, machine_info, write_section

    results = {
        "machine": machine_info(),
        "command": command_line(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "repeats": args.repeats,
        "rows": measured,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    write_section(args.markdown, "sampling", markdown(results))


def markdown(results: dict[str, Any]) -> str:
    """The results page's section: PriorityBuffer's full step against cpprb's per (N, B)."""
    from _common import machine_line

    times: dict[tuple[int, int, str], float] = {
        (row["n"], row["b"], row["implementation"]): row["us"][3] for row in results["rows"]
    }
    sizes = sorted({(n, b) for n, b, _ in times})
    lines = [
        f"Machine: {machine_line(results['machine'])}. Run {results['date']}; median of "
        f"{results['repeats']} calls per cell.",
        "",
        "```bash",
        results["command"],
        "```",
        "",
        "| N | B | PriorityBuffer µs | flat + torch.multinomial µs | cpprb µs "
        "| PriorityBuffer / cpprb |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for n, b in sizes:
        ours = times.get((n, b, "PriorityBuffer"), float("nan"))
        flat = times.get((n, b, "flat + torch.multinomial"), float("nan"))
        cpprb = times.get((n, b, "cpprb PrioritizedReplayBuffer"), float("nan"))
        lines.append(
            f"| {n:,} | {b} | {ours:.0f} | {flat:.0f} | {cpprb:.0f} | {ours / cpprb:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

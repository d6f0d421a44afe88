"""Fingerprint the final student of every reference method on the digits budget.

A refactor of the method layer that keeps a method's random streams must leave its final
student bit-identical. This script distils the digits teacher with each method's
``"digits"`` preset (seed 0, CPU, fp32) and records a SHA-256 of the final student's
weights and its accuracy on the held-out digits; ``--against`` compares with a file an
earlier commit wrote and exits 1 where a fingerprint differs.

Usage::

    python benchmarks/equivalence.py --out docs/results/equivalence_digits/COMMIT.json
    python benchmarks/equivalence.py --out docs/results/equivalence_digits/NEW.json \
        --against docs/results/equivalence_digits/COMMIT.json \
        --markdown docs/notes/DATE-equivalence.md

With ``--markdown`` the comparison is written as a section of that file.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import command_line, machine_info, machine_line, write_section

import ssdkd
from ssdkd.data import load_dataset
from ssdkd.engine.demo import STUDENT_MODEL, _teacher
from ssdkd.methods import PRESETS, noise_control_for
from ssdkd.models import create_model

METHODS = ("ssd-kd", "fast-dfkd", "deepinversion", "noise-control")


def fingerprint(module: torch.nn.Module) -> str:
    """SHA-256 of every tensor of ``module``'s state, in order, as raw bytes."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


QUICK = {"rounds": 3, "warmup_rounds": 1, "kd_steps": 2, "iterations": 5, "pool_size": 128}
"""A budget of seconds for ``--quick`` (smoke tests), where the config has the field."""


def run(method: str, seed: int, cache: Path, quick: bool = False) -> dict[str, object]:
    dataset = load_dataset("digits")
    teacher, _, _ = _teacher(cache, 0, False)
    torch.manual_seed(seed)
    student = create_model(
        STUDENT_MODEL,
        num_classes=dataset.num_classes,
        in_channels=dataset.image_shape[0],
        image_size=dataset.image_shape[1],
    )
    # The noise control has no digits preset: the demo's, SSD-KD's KD budget on noise.
    config = (
        noise_control_for(PRESETS["ssd-kd"]["digits"], pool_size=1000)
        if method == "noise-control"
        else PRESETS[method]["digits"]
    )
    if quick:
        names = {f.name for f in dataclasses.fields(config)}
        config = dataclasses.replace(config, **{k: v for k, v in QUICK.items() if k in names})
    start = time.perf_counter()
    result = ssdkd.distill(
        teacher,
        student,
        method,
        num_classes=dataset.num_classes,
        image_shape=dataset.image_shape,
        normalization=(dataset.mean, dataset.std),
        config=config,
        eval_data=(dataset.x_test, dataset.y_test),
        device="cpu",
        seed=seed,
        progress=False,
    )
    return {
        "student_sha256": fingerprint(result.student),
        "final_accuracy": result.final_accuracy,
        "seconds": time.perf_counter() - start,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--against", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--markdown", type=Path, default=None, help="write the comparison here")
    parser.add_argument("--quick", action="store_true", help="a budget of seconds (smoke test)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads; with two, SSD-KD's final student was measured to differ from "
        "run to run on one commit, with one every method is bit-reproducible",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {
        "commit": machine_info()["git_commit"],
        "machine": machine_info(),
        "command": command_line(),
        "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seed": args.seed,
        "methods": {},
    }
    with tempfile.TemporaryDirectory() as cache:
        for method in args.methods:
            results["methods"][method] = run(method, args.seed, Path(cache), args.quick)
            print(method, results["methods"][method], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    if args.against is None:
        return 0
    reference = json.loads(args.against.read_text())
    before = reference["methods"]
    differ = 0
    rows = []
    for method, now in results["methods"].items():
        if method not in before:
            continue
        same = before[method]["student_sha256"] == now["student_sha256"]
        differ += not same
        print(
            f"{method}: {'identical' if same else 'DIFFERENT'} final student "
            f"({before[method]['final_accuracy']:.4f} -> {now['final_accuracy']:.4f})"
        )
        rows.append(
            f"| {method} | {100 * before[method]['final_accuracy']:.2f} | "
            f"{100 * now['final_accuracy']:.2f} | {'yes' if same else '**no**'} |"
        )
    if args.markdown is not None:
        body = [
            "### Final students before and after a change of the method layer (digits)",
            "",
            f"Machine: {machine_line(results['machine'])}. Run "
            f"{results['started']}; library {results['commit']} against "
            f"{reference['commit']}; seed {args.seed}, each method's digits preset.",
            "",
            "```bash",
            results["command"],
            "```",
            "",
            f"| method | final accuracy at {reference['commit']} (%) | now (%) | "
            "final student bit-identical |",
            "|---|---:|---:|---|",
            *rows,
        ]
        write_section(args.markdown, "equivalence-digits", "\n".join(body))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())

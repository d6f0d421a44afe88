"""Time-to-accuracy of DeepInversion, Fast-2, Fast-5 and SSD-KD with one teacher and student.

Every method runs ``ssdkd.distill`` with its own schedule (see :func:`schedules`: the
library's presets with the published loss weights and learning rates, only the budget
scaled to the dataset), for every seed, with the same teacher and the same student
architecture (the student's initial weights depend on the seed only). Per round the JSON
records the held-out accuracy, overall / synthesis / KD seconds, images synthesized and
KD steps. The report (PNG and a markdown section) uses medians over seeds and the
*final-round* accuracy of each run (never the best round: that would select on the test
set).

``--ablation`` runs the SSD-KD Table-4 ablations (no diversity, no difficulty, no priority
sampling, no φ) and full SSD-KD at the same budget instead of the four methods.

    # quick digits study (teacher trained into ~/.cache/ssdkd-bench when not given)
    OMP_NUM_THREADS=2 python benchmarks/efficiency.py --dataset digits
    # Fashion-MNIST main study and ablations
    OMP_NUM_THREADS=2 python benchmarks/efficiency.py --dataset fashion-mnist \\
        --teacher /work/teachers/fashion_small_cnn.pt
    OMP_NUM_THREADS=2 python benchmarks/efficiency.py --dataset fashion-mnist \\
        --teacher /work/teachers/fashion_small_cnn.pt --ablation \\
        --reference-from docs/results/efficiency_fashion-mnist.json
    # redraw the report of a (possibly partial) JSON without running anything
    python benchmarks/efficiency.py --dataset fashion-mnist --report-only
    # smoke run (seconds)
    python benchmarks/efficiency.py --dataset digits --quick --out /tmp/e.json \\
        --plot /tmp/e.png --markdown /tmp/e.md
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from _common import command_line, machine_info, machine_line, write_section

import ssdkd
from ssdkd.data import Dataset, load_dataset
from ssdkd.engine.evaluation import evaluate_accuracy
from ssdkd.engine.teacher import TEACHER_RECIPES, load_teacher, save_teacher, train_teacher
from ssdkd.methods.config import (
    DEEPINVERSION_DIGITS,
    FAST2,
    FAST2_DIGITS,
    FAST5,
    SSDKD_DIGITS,
    DeepInversionConfig,
    MethodConfig,
    SSDKDConfig,
    config_to_dict,
)
from ssdkd.models import create_model

METHODS = ("deepinversion", "fast-2", "fast-5", "ssd-kd")
"""Benchmark method names; each maps to a library method in :data:`LIBRARY_METHOD`."""
LIBRARY_METHOD = {
    "deepinversion": "deepinversion",
    "fast-2": "fast-dfkd",
    "fast-5": "fast-dfkd",
    "ssd-kd": "ssd-kd",
}
ABLATIONS: dict[str, dict[str, Any]] = {
    "ssd-kd": {},
    "no-diversity": {"use_diversity": False},
    "no-difficulty": {"use_difficulty": False},
    "no-priority": {"priority_sampling": False},
    "no-phi": {"use_phi": False},
}
"""The SSD-KD Table-4 variants: switches applied to the SSD-KD schedule."""
ROOT = Path(__file__).resolve().parent.parent


def schedules(dataset: str, quick: bool = False) -> dict[str, MethodConfig]:
    """The config of every method for ``dataset``; only budgets differ from the presets.

    Fashion-MNIST (60k 28×28 grey training images) keeps the published loss weights,
    learning rates, temperatures and generator settings of FAST2 / FAST5 /
    SSDKDConfig() / DeepInversionConfig() and scales the budget to the 2-core CPU:
    batches of 128 (synthesis and KD) instead of 256, 30 rounds with 3 warm-up rounds
    instead of 220 / 20, 40 KD steps per round for Fast-N instead of 400 and a quarter of
    that (10) for SSD-KD (the library's 400 : 100 ratio), an SSD-KD buffer of 6,000 images
    (10% of the training set, as the paper's 5,000 of CIFAR-10's 50k), crop padding 2 and
    flips (clothes are mirror-symmetric). DeepInversion optimises 6 batches of 128 images
    for 200 Adam steps each (10% of the published 2,000) and runs 60 KD steps per batch.
    One departure from "budget only", for every method alike: KD temperature 4 and student
    learning rate 0.05 (the library's digits values) instead of T = 20 / lr 0.2 (Fast-DFKD)
    or T = 3 (DeepInversion): with T = 20 and lr 0.2 the first KD step of the tiny_cnn
    student reached a loss of 115 and the student stayed at 9.4% (chance) for 10 rounds,
    while T = 4 / lr 0.05 climbed to 30% in the same 10 rounds (measured on 2,000 test
    images while calibrating, before the study).

    Digits uses the library's ``*_DIGITS`` presets (Fast-5 is FAST2_DIGITS with Fast-5's
    generator settings). ``quick`` shrinks any schedule to a few seconds for the smoke test.
    """
    if dataset == "digits":
        configs: dict[str, MethodConfig] = {
            "deepinversion": DEEPINVERSION_DIGITS,
            "fast-2": FAST2_DIGITS,
            "fast-5": dataclasses.replace(
                FAST2_DIGITS, g_steps=FAST5.g_steps, lr_g=FAST5.lr_g, lr_z=FAST5.lr_z
            ),
            "ssd-kd": SSDKD_DIGITS,
        }
    elif dataset == "fashion-mnist":
        budget: dict[str, Any] = {
            "rounds": 30,
            "warmup_rounds": 3,
            "kd_batch_size": 128,
            "synthesis_batch_size": 128,
            "crop_padding": 2,
            "flip": True,
            "temperature": 4.0,
            "student_lr": 0.05,
        }
        configs = {
            "deepinversion": dataclasses.replace(
                DeepInversionConfig(),
                rounds=6,
                warmup_rounds=0,
                kd_steps=60,
                kd_batch_size=128,
                synthesis_batch_size=128,
                iterations=200,
                crop_padding=2,
                flip=True,
                temperature=4.0,
                student_lr=0.05,
            ),
            "fast-2": dataclasses.replace(FAST2, kd_steps=40, **budget),
            "fast-5": dataclasses.replace(FAST5, kd_steps=40, **budget),
            "ssd-kd": dataclasses.replace(SSDKDConfig(), kd_steps=10, buffer_size=6000, **budget),
        }
    else:
        raise ValueError(f"Expected dataset 'digits' or 'fashion-mnist', got {dataset!r}")
    if quick:
        for name, config in configs.items():
            if isinstance(config, DeepInversionConfig):
                configs[name] = dataclasses.replace(config, rounds=2, kd_steps=4, iterations=4)
            else:
                configs[name] = dataclasses.replace(config, rounds=3, warmup_rounds=1, kd_steps=4)
    return configs


def ablation_schedules(dataset: str, quick: bool = False) -> dict[str, MethodConfig]:
    """The SSD-KD schedule of ``dataset`` with each Table-4 switch applied."""
    base = schedules(dataset, quick)["ssd-kd"]
    assert isinstance(base, SSDKDConfig)
    return {name: dataclasses.replace(base, **changes) for name, changes in ABLATIONS.items()}


def get_teacher(args: argparse.Namespace, data: Dataset) -> tuple[torch.nn.Module, str]:
    """Load ``--teacher``, or train (once, cached) a small_cnn digits teacher."""
    path = Path(args.teacher) if args.teacher else None
    if path is None:
        if args.dataset != "digits":
            raise SystemExit("--teacher is required for fashion-mnist (ssdkd train-teacher)")
        path = Path(args.cache_dir) / "digits_small_cnn_seed0.pt"
        if not path.exists():
            recipe = TEACHER_RECIPES["digits"]
            torch.manual_seed(0)
            channels, size, _ = data.image_shape
            model = create_model(
                "small_cnn", num_classes=data.num_classes, in_channels=channels, image_size=size
            )
            result = train_teacher(
                model, data, **dataclasses.asdict(recipe), seed=0, device="cpu", progress=False
            )
            save_teacher(
                path,
                model,
                model_name="small_cnn",
                dataset=data,
                accuracy=result.accuracy,
                in_channels=channels,
                image_size=size,
            )
    teacher, meta = load_teacher(path)
    if meta["dataset"] != data.name:
        raise SystemExit(f"teacher {path} was trained on {meta['dataset']}, not {data.name}")
    return teacher, str(path)


def run_one(
    name: str,
    config: MethodConfig,
    seed: int,
    *,
    teacher: torch.nn.Module,
    student_name: str,
    data: Dataset,
) -> dict[str, Any]:
    """One ``ssdkd.distill`` run; the record holds the config and the per-round history."""
    channels, size, _ = data.image_shape
    torch.manual_seed(seed)
    student = create_model(
        student_name, num_classes=data.num_classes, in_channels=channels, image_size=size
    )
    method = LIBRARY_METHOD.get(name, "ssd-kd")
    start = time.perf_counter()
    result = ssdkd.distill(
        teacher,
        student,
        method,
        num_classes=data.num_classes,
        image_shape=data.image_shape,
        normalization=(data.mean, data.std),
        config=config,
        eval_data=(data.x_test, data.y_test),
        device="cpu",
        seed=seed,
        progress=False,
    )
    return {
        "name": name,
        "library_method": method,
        "seed": seed,
        "config": config_to_dict(config),
        "wall_seconds": time.perf_counter() - start,
        # Load averages after the run: the machine is shared, timings depend on it.
        "loadavg_after": list(os.getloadavg()),
        "history": result.history,
    }


# ---------------------------------------------------------------- summaries


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def time_to_reach(history: list[dict[str, Any]], target: float) -> float:
    """Overall seconds at the first round with accuracy ≥ ``target`` (inf if never)."""
    for record in history:
        if record["accuracy"] is not None and record["accuracy"] >= target - 1e-12:
            return float(record["overall_seconds"])
    return math.inf


def summarize(
    runs: list[dict[str, Any]], teacher_accuracy: float, num_classes: int = 10
) -> dict[str, Any]:
    """Per-name medians over seeds and the reach times against Fast-2, DI and the teacher."""
    chance = 1.0 / num_classes
    names = list(dict.fromkeys(run["name"] for run in runs))
    by_name = {name: [run for run in runs if run["name"] == name] for name in names}
    finals = {
        name: [float(run["history"][-1]["accuracy"]) for run in group]
        for name, group in by_name.items()
    }
    targets = {"teacher_95": 0.95 * teacher_accuracy}
    for reference in ("fast-2", "deepinversion", "ssd-kd"):
        if finals.get(reference):
            targets[reference] = _median(finals[reference])
    summary: dict[str, Any] = {"targets": targets, "chance": chance, "methods": {}}
    for name, group in by_name.items():
        last = [run["history"][-1] for run in group]
        entry: dict[str, Any] = {
            "seeds": [run["seed"] for run in group],
            "final_accuracy": finals[name],
            "final_accuracy_median": _median(finals[name]),
            "final_accuracy_min": min(finals[name]),
            "final_accuracy_max": max(finals[name]),
            "images_synthesized": _median([r["images_synthesized"] for r in last]),
            "kd_steps": _median([r["kd_steps"] for r in last]),
            "overall_seconds": _median([r["overall_seconds"] for r in last]),
            "synthesis_seconds": _median(
                [sum(r["synthesis_seconds"] for r in run["history"]) for run in group]
            ),
            "kd_seconds": _median([sum(r["kd_seconds"] for r in run["history"]) for run in group]),
            # Runs whose student ended at chance level (within one point).
            "runs_at_chance": sum(a <= chance + 0.01 for a in finals[name]),
        }
        for key, target in targets.items():
            times = [time_to_reach(run["history"], target) for run in group]
            entry[f"time_to_{key}"] = times
            entry[f"time_to_{key}_median"] = _median(times)
            entry[f"reached_{key}"] = sum(math.isfinite(t) for t in times)
        summary["methods"][name] = entry
    return summary


def _fmt_time(entry: dict[str, Any], key: str) -> str:
    median, reached, total = (
        entry[f"time_to_{key}_median"],
        entry[f"reached_{key}"],
        len(entry["seeds"]),
    )
    if not math.isfinite(median):
        return f"not reached ({reached}/{total})"
    return f"{median:.1f} s ({reached}/{total})"


def _fmt_acc(entry: dict[str, Any]) -> str:
    return (
        f"{100 * entry['final_accuracy_median']:.2f} "
        f"({100 * entry['final_accuracy_min']:.2f}–{100 * entry['final_accuracy_max']:.2f})"
    )


def markdown_table(summary: dict[str, Any], ablation: bool) -> str:
    """The main table (or the ablation table) of ``summary`` in markdown."""
    methods = summary["methods"]
    if ablation:
        lines = [
            "| variant | seeds | final accuracy % median (min–max) | Δ vs SSD-KD (points) "
            "| runs at chance | overall s |",
            "|---|---:|---|---:|---:|---:|",
        ]
        reference = methods.get("ssd-kd", {}).get("final_accuracy_median", math.nan)
        for name, entry in methods.items():
            delta = 100 * (entry["final_accuracy_median"] - reference)
            lines.append(
                f"| {name} | {len(entry['seeds'])} | {_fmt_acc(entry)} | {delta:+.2f} "
                f"| {entry['runs_at_chance']} | {entry['overall_seconds']:.0f} |"
            )
        return "\n".join(lines)
    targets = summary["targets"]
    lines = [
        "| method | seeds | final accuracy % median (min–max) "
        f"| time to Fast-2's final ({100 * targets.get('fast-2', math.nan):.2f}%) "
        f"| time to DI's final ({100 * targets.get('deepinversion', math.nan):.2f}%) "
        f"| time to 95% of teacher ({100 * targets['teacher_95']:.2f}%) "
        "| runs at chance | images synthesized | KD steps | overall s | synthesis s | KD s |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, entry in methods.items():
        reach = [
            _fmt_time(entry, key) if key in targets else "–"
            for key in ("fast-2", "deepinversion", "teacher_95")
        ]
        lines.append(
            f"| {name} | {len(entry['seeds'])} | {_fmt_acc(entry)} | {' | '.join(reach)} "
            f"| {entry['runs_at_chance']} | {entry['images_synthesized']:.0f} "
            f"| {entry['kd_steps']:.0f} "
            f"| {entry['overall_seconds']:.0f} | {entry['synthesis_seconds']:.0f} "
            f"| {entry['kd_seconds']:.0f} |"
        )
    return "\n".join(lines)


def target_lines(summary: dict[str, Any]) -> list[str]:
    """The issue's Fashion-MNIST targets, measured on ``summary`` (main study only)."""
    methods = summary["methods"]
    if not {"ssd-kd", "fast-2", "deepinversion"} <= set(methods):
        return []
    ssd, fast2, di = methods["ssd-kd"], methods["fast-2"], methods["deepinversion"]
    lines = []
    for reference, entry, limit in (("fast-2", fast2, 0.5), ("deepinversion", di, 0.1)):
        reach = ssd[f"time_to_{reference}_median"]
        ratio = reach / entry["overall_seconds"]
        verdict = "met" if ratio <= limit else "missed"
        if entry["final_accuracy_median"] <= summary["chance"] + 0.01:
            verdict += " only trivially: the reference's median final accuracy is chance level"
        shown = f"{ratio:.2f}×" if math.isfinite(ratio) else "never (not reached)"
        lines.append(
            f"- SSD-KD reaches {reference}'s final accuracy in {shown} of {reference}'s "
            f"overall time (target ≤ {limit}×): **{verdict}**."
        )
    gap = 100 * (ssd["final_accuracy_median"] - fast2["final_accuracy_median"])
    verdict = "met" if gap >= 0 else "missed"
    lines.append(
        f"- SSD-KD's final accuracy minus Fast-2's: {gap:+.2f} points (target ≥ 0): **{verdict}**."
    )
    return lines


def plot(runs: list[dict[str, Any]], summary: dict[str, Any], path: Path, title: str) -> None:
    """Accuracy vs overall seconds: median over seeds per round, min–max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for name in summary["methods"]:
        group = [run for run in runs if run["name"] == name]
        rounds = min(len(run["history"]) for run in group)
        x = [
            _median([run["history"][i]["overall_seconds"] for run in group]) for i in range(rounds)
        ]
        accs = [[100 * run["history"][i]["accuracy"] for run in group] for i in range(rounds)]
        (line,) = ax.plot(x, [_median(a) for a in accs], marker=".", label=name)
        for run in group:  # each seed, thin, in the method's colour
            ax.plot(
                [r["overall_seconds"] for r in run["history"]],
                [100 * r["accuracy"] for r in run["history"]],
                color=line.get_color(),
                linewidth=0.7,
                alpha=0.5,
            )
        ax.fill_between(
            x, [min(a) for a in accs], [max(a) for a in accs], color=line.get_color(), alpha=0.2
        )
    teacher_95 = 100 * summary["targets"]["teacher_95"]
    ax.axhline(teacher_95, color="grey", linestyle="--", linewidth=1, label="95% of teacher")
    ax.set_xlabel("overall seconds (synthesis + KD, median over seeds)")
    ax.set_ylabel("held-out accuracy % (median bold, seeds thin)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def schedule_lines(runs: list[dict[str, Any]]) -> list[str]:
    """One line per name with the budget fields of its config."""
    fields = (
        "rounds",
        "warmup_rounds",
        "kd_steps",
        "kd_batch_size",
        "synthesis_batch_size",
        "iterations",
        "g_steps",
        "buffer_size",
        "temperature",
        "student_lr",
        "crop_padding",
        "flip",
    )
    seen: dict[str, str] = {}
    for run in runs:
        config = run["config"]
        parts = [f"{f}={config[f]}" for f in fields if f in config]
        seen.setdefault(run["name"], ", ".join(parts))
    return [f"- `{name}`: {text}" for name, text in seen.items()]


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    """Write the plot and the markdown section of ``results``; return the section."""
    runs = results["runs"]
    summary = summarize(runs, results["teacher_accuracy"], results.get("num_classes", 10))
    results["summary"] = summary
    title = f"{results['dataset']}: {'SSD-KD ablations' if args.ablation else 'time to accuracy'}"
    if args.plot:
        plot(runs, summary, Path(args.plot), title)
    expected = len(args.seeds) * len(ablation_schedules("digits") if args.ablation else METHODS)
    status = (
        "complete"
        if len(runs) >= expected
        else f"**partial: {len(runs)} of {expected} runs finished**"
    )
    heading = "SSD-KD ablations (Table 4)" if args.ablation else "Time to accuracy"
    body = [
        f"### {heading}: {results['dataset']} ({status})",
        "",
        f"Teacher `{results['teacher']}` ({100 * results['teacher_accuracy']:.2f}% held-out), "
        f"student `{results['student']}`; seeds {sorted({r['seed'] for r in runs})}. "
        f"Machine: {machine_line(results['machine'])}. Run {results['started']}, "
        f"{results['total_wall_seconds'] / 60:.1f} min wall in all (evaluation included).",
        "",
        "```bash",
        results["command"],
        "```",
        "",
        "Schedules:",
        "",
        *schedule_lines(runs),
        "",
        markdown_table(summary, args.ablation),
    ]
    if not args.ablation:
        lines = target_lines(summary)
        if lines:
            body += ["", "Targets of the issue, on these medians:", "", *lines]
    if args.plot:
        try:
            relative = Path(args.plot).resolve().relative_to(ROOT / "docs")
            body += ["", f"![{title}]({relative.as_posix()})"]
        except ValueError:
            body += ["", f"Plot: `{args.plot}`"]
    return "\n".join(body) + "\n"


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--dataset", choices=("digits", "fashion-mnist"), default="digits")
    parser.add_argument("--teacher", default=None, help="teacher checkpoint (train-teacher)")
    parser.add_argument("--student", default="tiny_cnn", help="student architecture")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--ablation", action="store_true", help="run the SSD-KD ablations")
    parser.add_argument(
        "--reference-from",
        default=None,
        help="with --ablation: reuse the full SSD-KD runs of this main-study JSON when their "
        "config and seed match instead of running them again",
    )
    parser.add_argument("--quick", action="store_true", help="tiny budget (smoke test)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--out", default=None, help="JSON path (default docs/results/...)")
    parser.add_argument("--plot", default=None, help="PNG path (default docs/figures/...)")
    parser.add_argument("--markdown", default=None, help="markdown file to add the section to")
    parser.add_argument(
        "--report-only", action="store_true", help="redraw plot and markdown from --out"
    )
    parser.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "ssdkd-bench"))
    args = parser.parse_args(argv)
    stem = f"efficiency{'_ablation' if args.ablation else ''}_{args.dataset}"
    if args.out is None:
        args.out = str(ROOT / "docs" / "results" / f"{stem}.json")
    if args.plot is None:
        args.plot = str(ROOT / "docs" / "figures" / f"{stem}.png")
    if args.markdown is None:
        args.markdown = str(ROOT / "docs" / "benchmarks.md")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    if args.report_only:
        results = json.loads(out.read_text())
        args.seeds = results["seeds"]
    else:
        data = load_dataset(args.dataset)
        teacher, teacher_path = get_teacher(args, data)
        teacher_accuracy = evaluate_accuracy(
            teacher, data.x_test, data.y_test, normalize=(data.mean, data.std)
        )
        configs = (
            ablation_schedules(args.dataset, args.quick)
            if args.ablation
            else {name: schedules(args.dataset, args.quick)[name] for name in args.methods}
        )
        reference: list[dict[str, Any]] = []
        if args.ablation and args.reference_from:
            previous = json.loads(Path(args.reference_from).read_text())
            wanted = config_to_dict(configs["ssd-kd"])
            reference = [
                run
                for run in previous["runs"]
                if run["name"] == "ssd-kd" and run["config"] == wanted
            ]
        results = {
            "dataset": args.dataset,
            "teacher": teacher_path,
            "teacher_accuracy": teacher_accuracy,
            "num_classes": data.num_classes,
            "student": args.student,
            "seeds": args.seeds,
            "ablation": args.ablation,
            "quick": args.quick,
            "command": command_line(),
            "machine": machine_info(),
            "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "total_wall_seconds": 0.0,
            "runs": [],
        }
        start = time.perf_counter()
        out.parent.mkdir(parents=True, exist_ok=True)
        # Seeds outermost: a study stopped early still holds every method for some seeds.
        for seed in args.seeds:
            for name, config in configs.items():
                reused = [r for r in reference if r["seed"] == seed and name == "ssd-kd"]
                if reused:
                    run = {**reused[0], "reused_from": args.reference_from}
                else:
                    run = run_one(
                        name,
                        config,
                        seed,
                        teacher=teacher,
                        student_name=args.student,
                        data=data,
                    )
                results["runs"].append(run)
                results["total_wall_seconds"] = time.perf_counter() - start
                final = run["history"][-1]
                print(
                    f"[{time.strftime('%H:%M:%S')}] {name} seed {seed}: "
                    f"acc {100 * final['accuracy']:.2f}% overall {final['overall_seconds']:.1f} s "
                    f"wall {run['wall_seconds']:.1f} s",
                    flush=True,
                )
                # Written after every run, so a stopped study keeps what finished.
                out.write_text(json.dumps(results, indent=1) + "\n")
    section = report(results, args)
    out.write_text(json.dumps(results, indent=1) + "\n")
    key = f"efficiency-{'ablation' if args.ablation else 'main'}-{results['dataset']}"
    write_section(Path(args.markdown), key, section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())

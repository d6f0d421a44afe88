"""Final accuracy and time to accuracy of the reference methods, their ablations and buffers.

Every run distils the same teacher into the same student architecture with
``ssdkd.distill`` and the library's presets for the dataset (``*_FASHION_MNIST`` or
``*_DIGITS`` in :mod:`ssdkd.methods`); a seed fixes the student's initial weights and every
random choice of the run. Per round a run records the held-out accuracy, the overall /
synthesis / KD seconds, the images synthesised, the KD steps and the diagnostics of the
engine (class entropies, teacher confidence, φ, importance weights, the student's most
frequent class). Tables use the **final round's** accuracy (the best round would select on
the test set) and medians over seeds.

Studies (``--study``), each a list of (name, seeds) pairs:

- ``main``: DeepInversion, Fast-2, Fast-5, SSD-KD, the noise control (SSD-KD's KD budget on
  uniform noise) and ``real-data`` (the student trained with cross-entropy on the real
  training set with SSD-KD's step budget: the upper bound);
- ``ablation``: SSD-KD's Table-4 variants (no diversity, no difficulty, no priority
  sampling, no φ) beside full SSD-KD;
- ``buffer``: SSD-KD with buffers of 1%, 5%, 10% and 20% of the training set (Fig. 4)
  beside the preset's own size.

**Resumable:** each run writes one JSON file, ``RESULTS/NAME_seedS.json``; a rerun skips
runs whose file holds the same config and recomputes the others, so a study stopped at any
point continues where it stopped. Runs shared by studies (full SSD-KD) are run once.

    # the Fashion-MNIST studies (hours on 2 CPU cores; run in the background)
    OMP_NUM_THREADS=2 nohup python benchmarks/efficiency.py --dataset fashion-mnist \\
        --study main ablation buffer &
    # redraw tables and plots from the run files without running anything
    python benchmarks/efficiency.py --dataset fashion-mnist --report-only
    # smoke run (seconds)
    python benchmarks/efficiency.py --dataset digits --quick --results /tmp/e \\
        --figures /tmp/f --markdown /tmp/e.md
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
from _common import (
    FASHION_MNIST_TEACHER,
    VALIDATION,
    command_line,
    machine_info,
    machine_line,
    write_section,
)

import ssdkd
from ssdkd.data import Dataset, load_dataset
from ssdkd.engine.checkpoint import module_fingerprint
from ssdkd.engine.evaluation import evaluate_accuracy
from ssdkd.engine.teacher import TEACHER_RECIPES, load_teacher, save_teacher, train_teacher
from ssdkd.generators import Augment, normalize
from ssdkd.methods import (
    PRESETS,
    DeepInversionConfig,
    MethodConfig,
    SSDKDConfig,
    config_from_dict,
    config_to_dict,
    noise_control_for,
)
from ssdkd.models import create_model

ROOT = Path(__file__).resolve().parent.parent
LIBRARY_METHOD = {
    "deepinversion": "deepinversion",
    "fast-2": "fast-dfkd",
    "fast-5": "fast-dfkd",
    "noise-control": "noise-control",
}
"""Benchmark name → ``ssdkd.distill`` method; every other name is an SSD-KD variant."""
ABLATIONS: dict[str, dict[str, Any]] = {
    "no-diversity": {"use_diversity": False},
    "no-difficulty": {"use_difficulty": False},
    "no-priority": {"priority_sampling": False},
    "no-phi": {"use_phi": False},
}
"""The SSD-KD Table-4 variants: switches applied to the SSD-KD preset."""
BUFFER_SHARES = (0.01, 0.05, 0.10, 0.20)
"""Buffer sizes of the ``buffer`` study, as shares of the training set (with the preset's
size)."""
PRESET_NAME = {"digits": "digits", "fashion-mnist": "fashion-mnist"}
TEACHERS = {"fashion-mnist": FASHION_MNIST_TEACHER}
"""The study's default teacher per dataset."""


def _presets(dataset: str) -> dict[str, MethodConfig]:
    preset = PRESET_NAME[dataset]
    fast5 = "fast-5-" + preset
    return {
        "deepinversion": PRESETS["deepinversion"][preset],
        "fast-2": PRESETS["fast-dfkd"][preset],
        "fast-5": PRESETS["fast-dfkd"][fast5],
        "ssd-kd": PRESETS["ssd-kd"][preset],
    }


def _shrink(config: MethodConfig) -> MethodConfig:
    """A few-second version of ``config`` for the smoke test."""
    if isinstance(config, DeepInversionConfig):
        return dataclasses.replace(config, rounds=2, kd_steps=4, iterations=4)
    return dataclasses.replace(config, rounds=3, warmup_rounds=1, kd_steps=4)


def study_runs(
    dataset: str, study: str, train_size: int, quick: bool = False
) -> list[tuple[str, MethodConfig | None, list[int]]]:
    """(name, config, seeds) of every run of ``study``; ``real-data`` has no config."""
    presets = _presets(dataset)
    if quick:
        presets = {name: _shrink(config) for name, config in presets.items()}
    ssd = presets["ssd-kd"]
    assert isinstance(ssd, SSDKDConfig)
    five, three = [0, 1, 2, 3, 4], [0, 1, 2]
    if quick:
        five = three = [0]
    if study == "main":
        noise = noise_control_for(ssd, pool_size=ssd.buffer_size)
        return [
            ("ssd-kd", ssd, five),
            ("fast-2", presets["fast-2"], five),
            ("fast-5", presets["fast-5"], three),
            ("deepinversion", presets["deepinversion"], three),
            ("noise-control", noise, three),
            ("real-data", None, three),
        ]
    if study == "ablation":
        return [("ssd-kd", ssd, three)] + [
            (name, dataclasses.replace(ssd, **changes), three)
            for name, changes in ABLATIONS.items()
        ]
    if study == "buffer":
        runs: list[tuple[str, MethodConfig | None, list[int]]] = []
        sizes = {
            max(ssd.synthesis_batch_size, round(share * train_size)) for share in BUFFER_SHARES
        }
        for size in sorted(sizes | {ssd.buffer_size}):
            name = "ssd-kd" if size == ssd.buffer_size else f"buffer-{size}"
            runs.append((name, dataclasses.replace(ssd, buffer_size=size), three))
        return runs
    raise ValueError(f"Expected study 'main', 'ablation' or 'buffer', got {study!r}")


# ---------------------------------------------------------------- running


def get_teacher(args: argparse.Namespace, data: Dataset) -> tuple[torch.nn.Module, str]:
    """Load ``--teacher`` or the dataset's teacher in ``TEACHERS``, or train (once, cached) a
    small_cnn digits teacher."""
    path = Path(args.teacher) if args.teacher else TEACHERS.get(args.dataset)
    if path is None:
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
    try:
        return teacher, path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return teacher, str(path)


def _student(name: str, data: Dataset, seed: int) -> torch.nn.Module:
    channels, size, _ = data.image_shape
    torch.manual_seed(seed)
    return create_model(name, num_classes=data.num_classes, in_channels=channels, image_size=size)


def run_distill(
    name: str,
    config: MethodConfig,
    seed: int,
    *,
    teacher: torch.nn.Module,
    args: Any,
    data: Dataset,
) -> tuple[list[dict[str, Any]], torch.nn.Module]:
    """One ``ssdkd.distill`` run; returns its per-round history and final student."""
    result = ssdkd.distill(
        teacher,
        _student(args.student, data, seed),
        LIBRARY_METHOD.get(name, "ssd-kd"),
        num_classes=data.num_classes,
        image_shape=data.image_shape,
        normalization=(data.mean, data.std),
        config=config,
        eval_data=(data.x_test, data.y_test),
        device="cpu",
        seed=seed,
        progress=False,
    )
    return result.history, result.student


def validation_accuracy(model: torch.nn.Module, data: Dataset) -> float:
    """Accuracy on the last ``VALIDATION`` training images, the calibration split."""
    return evaluate_accuracy(
        model,
        data.x_train[-VALIDATION:],
        data.y_train[-VALIDATION:],
        normalize=(data.mean, data.std),
    )


def run_real_data(
    budget: SSDKDConfig, seed: int, *, args: Any, data: Dataset
) -> list[dict[str, Any]]:
    """The upper bound: cross-entropy on real training images with SSD-KD's KD budget.

    Same student, batch size, number of steps, SGD settings, cosine schedule and batch
    augmentation as SSD-KD's KD steps; one record per SSD-KD round (after warm-up).
    """
    student = _student(args.student, data, seed)
    optimizer = torch.optim.SGD(
        student.parameters(),
        lr=budget.student_lr,
        momentum=budget.student_momentum,
        weight_decay=budget.student_weight_decay,
    )
    rounds = budget.rounds - budget.warmup_rounds
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=rounds * budget.kd_steps
    )
    augment = Augment(crop_padding=budget.crop_padding, flip=budget.flip)
    generator = torch.Generator().manual_seed(seed)
    history: list[dict[str, Any]] = []
    overall, steps = 0.0, 0
    for round_index in range(rounds):
        start = time.perf_counter()
        student.train()
        for _ in range(budget.kd_steps):
            index = torch.randint(
                0, data.x_train.shape[0], (budget.kd_batch_size,), generator=generator
            )
            images = augment(data.x_train[index], generator=generator)
            logits = student(normalize(images, data.mean, data.std))
            loss = torch.nn.functional.cross_entropy(logits, data.y_train[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            steps += 1
        seconds = time.perf_counter() - start
        overall += seconds
        accuracy = evaluate_accuracy(
            student, data.x_test, data.y_test, normalize=(data.mean, data.std)
        )
        history.append(
            {
                "round": round_index + 1,
                "images_synthesized": 0,
                "kd_steps": steps,
                "overall_seconds": overall,
                "synthesis_seconds": 0.0,
                "kd_seconds": seconds,
                "accuracy": accuracy,
            }
        )
    return history


def run_file(results: Path, name: str, seed: int) -> Path:
    return results / f"{name}_seed{seed}.json"


REAL_DATA_FIELDS = (
    "rounds",
    "warmup_rounds",
    "kd_steps",
    "kd_batch_size",
    "student_lr",
    "student_momentum",
    "student_weight_decay",
    "crop_padding",
    "flip",
)
"""The fields of SSD-KD's config that ``run_real_data`` uses."""


def _recorded_config(config: MethodConfig | None, ssd: MethodConfig) -> dict[str, Any]:
    """What a run file records as its config (``real-data``: the SSD-KD budget it copies)."""
    if config is None:
        budget = config_to_dict(ssd)
        return {"real_data_budget": {field: budget[field] for field in REAL_DATA_FIELDS}}
    return config_to_dict(config)


def _is_current(run: dict[str, Any], recorded: dict[str, Any], header: dict[str, Any]) -> bool:
    """Whether a run file holds the planned config, distilled from the study's teacher
    (``real-data`` uses no teacher). A field added to a config class after the run counts
    at its default, which keeps the behaviour the run had (``synthesis_share=1.0``)."""
    if "real_data_budget" in recorded:
        return run.get("config") == recorded
    try:
        if config_to_dict(config_from_dict(run["config"])) != recorded:
            return False
    except (KeyError, TypeError, ValueError):
        return False
    fingerprint = header.get("teacher_fingerprint")
    return fingerprint is not None and run.get("teacher_fingerprint") == fingerprint


def run_study(args: argparse.Namespace) -> None:
    """Run every missing or outdated run of the chosen studies, one file per run."""
    data = load_dataset(args.dataset)
    teacher, teacher_path = get_teacher(args, data)
    teacher_accuracy = evaluate_accuracy(
        teacher, data.x_test, data.y_test, normalize=(data.mean, data.std)
    )
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    header = {
        "dataset": args.dataset,
        "teacher": teacher_path,
        "teacher_fingerprint": module_fingerprint(teacher, weights=True),
        "teacher_accuracy": teacher_accuracy,
        "num_classes": data.num_classes,
        "student": args.student,
        "train_size": int(data.x_train.shape[0]),
        "quick": args.quick,
        "teacher_validation_accuracy": validation_accuracy(teacher, data),
    }
    (results / "study.json").write_text(json.dumps(header, indent=1) + "\n")
    # The library as this process imported it: a commit made while the study runs does
    # not change the code its runs execute.
    code = machine_info()["git_commit"]
    ssd = _presets(args.dataset)["ssd-kd"]
    assert isinstance(ssd, SSDKDConfig)
    if args.quick:
        ssd = _shrink(ssd)  # type: ignore[assignment]
    todo: list[tuple[str, MethodConfig | None, int]] = []
    for study in args.study:
        for name, config, seeds in study_runs(
            args.dataset, study, int(data.x_train.shape[0]), args.quick
        ):
            todo += [(name, config, seed) for seed in seeds]
    if args.runs is not None:
        unknown = sorted(set(args.runs) - {name for name, _, _ in todo})
        if unknown:
            known = sorted({name for name, _, _ in todo})
            raise SystemExit(f"--runs: {unknown} not in the chosen studies' runs {known}")
        todo = [item for item in todo if item[0] in args.runs]
    # Seeds outermost: a study stopped early holds every name for its first seeds.
    todo.sort(key=lambda item: item[2])
    seen: set[tuple[str, int]] = set()
    for name, config, seed in todo:
        if (name, seed) in seen:
            continue
        seen.add((name, seed))
        path = run_file(results, name, seed)
        recorded = _recorded_config(config, ssd)
        if path.exists() and _is_current(json.loads(path.read_text()), recorded, header):
            continue
        start = time.perf_counter()
        validation = None  # real-data trains on the validation images: not measured
        if config is None:
            history = run_real_data(ssd, seed, args=args, data=data)
            wall = time.perf_counter() - start
        else:
            history, student = run_distill(
                name, config, seed, teacher=teacher, args=args, data=data
            )
            wall = time.perf_counter() - start
            validation = validation_accuracy(student, data)
        run = {
            "name": name,
            "seed": seed,
            "config": recorded,
            "teacher_fingerprint": header["teacher_fingerprint"],
            "wall_seconds": wall,
            "validation_accuracy": validation,
            # Load averages after the run: the machine is shared, timings depend on it.
            "loadavg_after": list(os.getloadavg()),
            "machine": {**machine_info(), "git_commit": code},
            "command": command_line(),
            "finished": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "history": history,
        }
        if config is None:
            run["train_images"] = int(data.x_train.shape[0])
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(run) + "\n")
        os.replace(tmp, path)
        final = history[-1]
        print(
            f"[{time.strftime('%H:%M:%S')}] {name} seed {seed}: acc {100 * final['accuracy']:.2f}% "
            f"overall {final['overall_seconds']:.1f} s wall {run['wall_seconds']:.1f} s",
            flush=True,
        )


# ---------------------------------------------------------------- summaries


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def time_to_reach(history: list[dict[str, Any]], target: float) -> float:
    """Overall seconds at the first round with accuracy ≥ ``target`` (inf if never)."""
    for record in history:
        if record["accuracy"] is not None and record["accuracy"] >= target - 1e-12:
            return float(record["overall_seconds"])
    return math.inf


def load_runs(results: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(results.glob("*_seed*.json"))]


def _pool_images(run: dict[str, Any]) -> float:
    """Images the student learns from at the end: the buffer, the pool or the noise."""
    config = run["config"]
    if "real_data_budget" in config:
        return float(run["train_images"])
    if "buffer_size" in config:
        return float(min(config["buffer_size"], run["history"][-1]["images_synthesized"]))
    if "pool_size" in config:
        return float(config["pool_size"])
    capacity = config.get("pool_capacity", 0)
    made = run["history"][-1]["images_synthesized"]
    return float(min(capacity, made) if capacity else made)


def summarize(
    runs: list[dict[str, Any]], teacher_accuracy: float, num_classes: int
) -> dict[str, Any]:
    """Per-name medians over seeds and times to reach Fast-2's and the teacher's accuracy."""
    chance = 1.0 / num_classes
    names = list(dict.fromkeys(run["name"] for run in runs))
    by_name = {name: [run for run in runs if run["name"] == name] for name in names}
    finals = {
        name: [float(run["history"][-1]["accuracy"]) for run in group]
        for name, group in by_name.items()
    }
    targets = {"teacher_95": 0.95 * teacher_accuracy}
    if finals.get("fast-2"):
        targets["fast-2"] = _median(finals["fast-2"])
    summary: dict[str, Any] = {"targets": targets, "chance": chance, "methods": {}}
    for name, group in by_name.items():
        last = [run["history"][-1] for run in group]
        entry: dict[str, Any] = {
            "seeds": [run["seed"] for run in group],
            "final_accuracy": finals[name],
            "final_accuracy_median": _median(finals[name]),
            "final_accuracy_min": min(finals[name]),
            "final_accuracy_max": max(finals[name]),
            "validation_accuracy_median": _median(
                [
                    run["validation_accuracy"]
                    for run in group
                    if run.get("validation_accuracy") is not None
                ]
            ),
            "images_synthesized": _median([r["images_synthesized"] for r in last]),
            "pool_images": _median([_pool_images(run) for run in group]),
            "kd_steps": _median([r["kd_steps"] for r in last]),
            "overall_seconds": _median([r["overall_seconds"] for r in last]),
            "synthesis_seconds": _median(
                [sum(r["synthesis_seconds"] for r in run["history"]) for run in group]
            ),
            "kd_seconds": _median([sum(r["kd_seconds"] for r in run["history"]) for run in group]),
            # Runs whose student ended within one point of chance (one class for all).
            "runs_at_chance": sum(a <= chance + 0.01 for a in finals[name]),
        }
        for key, target in targets.items():
            times = [time_to_reach(run["history"], target) for run in group]
            entry[f"time_to_{key}_median"] = _median(times)
            entry[f"reached_{key}"] = sum(math.isfinite(t) for t in times)
        summary["methods"][name] = entry
    if "fast-2" in targets and "ssd-kd" in by_name:
        # Per seed, SSD-KD's time to Fast-2's median accuracy over the same seed's Fast-2
        # run, for the seeds whose two runs ran on the same kind of machine: a study
        # continued on another machine still compares times measured on one machine.
        fast2 = {run["seed"]: run for run in by_name["fast-2"]}
        ratios = [
            time_to_reach(run["history"], targets["fast-2"])
            / fast2[run["seed"]]["history"][-1]["overall_seconds"]
            for run in by_name["ssd-kd"]
            if run["seed"] in fast2
            and machine_line(run["machine"]) == machine_line(fast2[run["seed"]]["machine"])
        ]
        summary["paired_time_ratio"] = {"median": _median(ratios), "seeds": len(ratios)}
    return summary


def _fmt_time(entry: dict[str, Any], key: str) -> str:
    median, reached = entry[f"time_to_{key}_median"], entry[f"reached_{key}"]
    total = len(entry["seeds"])
    if not math.isfinite(median):
        return f"not reached ({reached}/{total})"
    return f"{median:.0f} s ({reached}/{total})"


def _fmt_percent(value: float) -> str:
    return "–" if math.isnan(value) else f"{100 * value:.2f}"


def _fmt_acc(entry: dict[str, Any]) -> str:
    return (
        f"{100 * entry['final_accuracy_median']:.2f} "
        f"({100 * entry['final_accuracy_min']:.2f}–{100 * entry['final_accuracy_max']:.2f})"
    )


def markdown_table(summary: dict[str, Any], names: list[str]) -> str:
    """One row per name present in ``summary``."""
    targets = summary["targets"]
    fast2 = targets.get("fast-2", math.nan)
    lines = [
        "| run | seeds | final accuracy % median (min–max) | runs at chance "
        f"| time to Fast-2's median ({100 * fast2:.2f}%) "
        f"| time to 95% of teacher ({100 * targets['teacher_95']:.2f}%) "
        "| images synthesized | images learnt from | KD steps | overall s | synthesis s | KD s "
        "| validation-split accuracy % median |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        entry = summary["methods"].get(name)
        if entry is None:
            continue
        reach = [
            _fmt_time(entry, key) if key in targets else "–" for key in ("fast-2", "teacher_95")
        ]
        lines.append(
            f"| {name} | {len(entry['seeds'])} | {_fmt_acc(entry)} | {entry['runs_at_chance']} "
            f"| {' | '.join(reach)} | {entry['images_synthesized']:.0f} "
            f"| {entry['pool_images']:.0f} | {entry['kd_steps']:.0f} "
            f"| {entry['overall_seconds']:.0f} | {entry['synthesis_seconds']:.0f} "
            f"| {entry['kd_seconds']:.0f} | {_fmt_percent(entry['validation_accuracy_median'])} |"
        )
    return "\n".join(lines)


def target_lines(summary: dict[str, Any]) -> list[str]:
    """The issue's targets, measured on ``summary`` (for the names that have run)."""
    methods = summary["methods"]
    lines: list[str] = []
    data_free = [n for n in methods if n not in ("noise-control", "real-data")]
    chance_runs = sum(methods[n]["runs_at_chance"] for n in data_free)
    lines.append(
        f"- Data-free runs at chance: {chance_runs} (target 0): "
        f"**{'met' if chance_runs == 0 else 'missed'}**."
    )
    if "noise-control" in methods:
        noise = methods["noise-control"]["final_accuracy_median"]
        worst = min((min(methods[n]["final_accuracy"]), n) for n in data_free)
        gap = 100 * (worst[0] - noise)
        lines.append(
            f"- Worst data-free run ({worst[1]}) minus the noise control's median: "
            f"{gap:+.1f} points (target ≥ +30): **{'met' if gap >= 30 else 'missed'}**."
        )
    goals = (("ssd-kd", 0.85, 0.80), ("fast-2", 0.80, None), ("deepinversion", 0.80, None))
    for name, median_goal, worst_goal in goals:
        if name not in methods:
            continue
        entry = methods[name]
        ok = entry["final_accuracy_median"] >= median_goal
        median = 100 * entry["final_accuracy_median"]
        text = f"median {median:.2f}% (target ≥ {100 * median_goal:.0f}%)"
        if worst_goal is not None:
            ok_worst = entry["final_accuracy_min"] >= worst_goal
            worst = 100 * entry["final_accuracy_min"]
            text += f", worst seed {worst:.2f}% (target ≥ {100 * worst_goal:.0f}%)"
            ok = ok and ok_worst
        lines.append(f"- {name}: {text}: **{'met' if ok else 'missed'}**.")
    if "ssd-kd" in methods and "fast-2" in methods:
        ssd, fast2 = methods["ssd-kd"], methods["fast-2"]
        paired = summary["paired_time_ratio"]
        ratio = paired["median"]
        fewer = fast2["pool_images"] / ssd["pool_images"]
        if paired["seeds"]:
            how = (
                f"reaches Fast-2's median final accuracy in {ratio:.2f}× of Fast-2's overall time"
                if math.isfinite(ratio)
                else "does not reach Fast-2's median final accuracy"
            )
            lines.append(
                f"- SSD-KD {how} (median over {paired['seeds']} seed(s) of the ratio to the "
                "same seed's Fast-2 run on the same machine; target ≤ 0.5×): "
                f"**{'met' if ratio <= 0.5 else 'missed'}**."
            )
        lines.append(
            f"- SSD-KD learns from {fewer:.1f}× fewer images than Fast-2's pool "
            f"(target ≥ 5×): **{'met' if fewer >= 5 else 'missed'}**."
        )
    return lines


def plot(
    runs: list[dict[str, Any]], names: list[str], summary: dict[str, Any], path: Path, title: str
) -> None:
    """Accuracy vs overall seconds: median over seeds per round, each seed thin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for name in names:
        group = [run for run in runs if run["name"] == name]
        if not group:
            continue
        rounds = min(len(run["history"]) for run in group)
        x = [
            _median([run["history"][i]["overall_seconds"] for run in group]) for i in range(rounds)
        ]
        y = [_median([100 * run["history"][i]["accuracy"] for run in group]) for i in range(rounds)]
        (line,) = ax.plot(x, y, label=name)
        for run in group:
            ax.plot(
                [r["overall_seconds"] for r in run["history"]],
                [100 * r["accuracy"] for r in run["history"]],
                color=line.get_color(),
                linewidth=0.6,
                alpha=0.4,
            )
    ax.axhline(
        100 * summary["targets"]["teacher_95"],
        color="grey",
        linestyle="--",
        linewidth=1,
        label="95% of teacher",
    )
    ax.set_xlabel("overall seconds (synthesis + KD)")
    ax.set_ylabel("test accuracy % (median bold, seeds thin)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def schedule_lines(runs: list[dict[str, Any]], names: list[str]) -> list[str]:
    """One line per name with the budget fields of its config."""
    fields = (
        "rounds",
        "warmup_rounds",
        "kd_steps",
        "kd_batch_size",
        "synthesis_batch_size",
        "iterations",
        "g_steps",
        "synthesis_share",
        "buffer_size",
        "refresh_policy",
        "pool_size",
        "temperature",
        "student_lr",
    )
    lines = []
    for name in names:
        run = next((r for r in runs if r["name"] == name), None)
        if run is None:
            continue
        config = run["config"].get("real_data_budget", run["config"])
        parts = [f"{f}={config[f]}" for f in fields if f in config]
        lines.append(f"- `{name}`: {', '.join(parts)}")
    return lines


def report(args: argparse.Namespace) -> None:
    """Write each study's markdown section and plot from the run files."""
    results = Path(args.results)
    if not (results / "study.json").is_file():
        raise SystemExit(f"no study in {results}: run the study first (without --report-only)")
    header = json.loads((results / "study.json").read_text())
    ssd = _presets(args.dataset)["ssd-kd"]
    if header["quick"]:
        ssd = _shrink(ssd)
    plans = {
        study: study_runs(args.dataset, study, header["train_size"], header["quick"])
        for study in ("main", "ablation", "buffer")
    }
    recorded = {
        name: _recorded_config(config, ssd) for plan in plans.values() for name, config, _ in plan
    }
    # Only runs of the planned configs from the study's teacher count; files left by an
    # earlier preset or teacher are reported as outdated until a rerun replaces them.
    every_run = load_runs(results)
    runs = [
        run
        for run in every_run
        if run["name"] in recorded and _is_current(run, recorded[run["name"]], header)
    ]
    if not runs:
        raise SystemExit(f"no current run files in {results}")
    counted = {id(run) for run in runs}
    outdated = sorted(f"{r['name']}_seed{r['seed']}" for r in every_run if id(r) not in counted)
    summary = summarize(runs, header["teacher_accuracy"], header["num_classes"])
    (results / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    for study in args.study:
        planned = plans[study]
        names = [name for name, _, _ in planned]
        expected = sum(len(seeds) for _, _, seeds in planned)
        done = [r for r in runs if r["name"] in names]
        status = (
            "complete" if len(done) >= expected else f"**partial: {len(done)} of {expected} runs**"
        )
        machines = {machine_line(r["machine"]) for r in done}
        commits = sorted({str(r["machine"].get("git_commit")) for r in done})
        try:
            shown = results.resolve().relative_to(ROOT).as_posix()
        except ValueError:
            shown = str(results)
        title = f"{args.dataset}: {study}"
        figure = Path(args.figures) / f"efficiency_{study}_{args.dataset}.png"
        body = [
            f"### Study `{study}`: {args.dataset} ({status})",
            "",
            f"Teacher `{header['teacher']}` ({100 * header['teacher_accuracy']:.2f}% test"
            + (
                f", {100 * header['teacher_validation_accuracy']:.2f}% on the validation "
                "split, images it was trained on"
                if "teacher_validation_accuracy" in header
                else ""
            )
            + "), "
            f"student `{header['student']}`. Machine: {'; '.join(sorted(machines))}. "
            f"Library commit(s): {', '.join(commits)}. Run files: `{shown}/`"
            + (
                f" ({len(outdated)} outdated file(s) of an earlier preset or teacher not counted)."
                if outdated
                else "."
            ),
            "",
            "Schedules:",
            "",
            *schedule_lines(done, names),
            "",
            markdown_table(summary, names),
        ]
        if study == "main":
            body += ["", "Targets, on these medians:", "", *target_lines(summary)]
        try:
            plot(done, names, summary, figure, title)
            try:
                relative = figure.resolve().relative_to(ROOT / "docs")
                body += ["", f"![{title}]({relative.as_posix()})"]
            except ValueError:
                body += ["", f"Plot: `{figure}`"]
        except ImportError:
            pass
        write_section(Path(args.markdown), f"efficiency-{study}-{args.dataset}", "\n".join(body))
        print("\n".join(body))


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--dataset", choices=tuple(PRESET_NAME), default="digits")
    parser.add_argument(
        "--teacher",
        default=None,
        help="teacher checkpoint (train-teacher); default: TEACHERS[dataset], or for digits "
        "one trained once into --cache-dir",
    )
    parser.add_argument("--student", default="tiny_cnn", help="student architecture")
    parser.add_argument(
        "--study", nargs="+", choices=("main", "ablation", "buffer"), default=["main"]
    )
    parser.add_argument(
        "--runs",
        nargs="+",
        default=None,
        metavar="NAME",
        help="run only these names of the chosen studies (e.g. ssd-kd fast-2), seed by seed; "
        "the report still covers every run",
    )
    parser.add_argument("--quick", action="store_true", help="tiny budget, one seed (smoke test)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--results", default=None, help="run-file directory")
    parser.add_argument("--figures", default=str(ROOT / "docs" / "figures"))
    parser.add_argument("--markdown", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--report-only", action="store_true", help="only redraw the report")
    parser.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "ssdkd-bench"))
    args = parser.parse_args(argv)
    if args.results is None:
        args.results = str(ROOT / "docs" / "results" / f"efficiency_{args.dataset}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if not args.report_only:
        run_study(args)
    report(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

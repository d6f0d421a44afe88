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

- ``main``: DeepInversion, Fast-2, Fast-5, SSD-KD, the generator family, CMI and NAYER
  (those with a preset for the dataset), the noise control (SSD-KD's KD budget on
  uniform noise) and ``real-data`` (the student trained with cross-entropy on the real
  training set with SSD-KD's step budget: the upper bound);
- ``ablation``: SSD-KD's Table-4 variants (no diversity, no difficulty, no priority
  sampling, no φ) beside full SSD-KD;
- ``buffer``: SSD-KD with buffers of 1%, 5%, 10% and 20% of the training set (Fig. 4)
  beside the preset's own size;
- ``regimes``: paired arms (5 seeds) where SSD-KD's modules should matter: φ on and off
  with the preset's z-only generator (whose batches are class-imbalanced) and with a
  harder synthesis (``HARDER_SYNTHESIS``), the preset's generator against the
  class-conditional one, priority and uniform draws from buffers of 1% and 2% of the
  training set, the priority's form (w·KL, KL, uniform), KD without augmentation on
  the teacher logits stored at admission (the paper's reuse of φ's values) against the
  preset's augmented KD, and the preset with Fast-2's KD steps per round (whether the
  preset's shortfall against Fast-2 is its smaller KD budget);
- ``figure1``: the paper's Figure 1, SSD-KD with a buffer of N synthetic images against
  the same student distilled (KL to the teacher, the same steps) on N real training
  images, N = 1%, 5%, 10% of the training set (3 seeds: at seed 0 of the earlier,
  class-conditional preset the real arm was 5.1–6.6 points above the synthetic one, more
  than the widest spread over seeds of any SSD-KD arm, 3.2 points);
- ``embeddings``: NAYER with label embeddings from a text encoder (``TEXT_EMBEDDINGS``)
  against its fallback, random orthonormal codes (3 seeds);
- ``schedule``: NAYER with the text encoder's embeddings over twice the preset's rounds
  after the warm-up (the paper's longer schedules) against the preset's (3 seeds).

The paired studies' report adds, per pair of arms, the mean of the per-seed differences
with its 95% Student-t interval on the test and the validation split, and whether the test
interval excludes zero: the arms share seeds and per-role random streams.

**Resumable:** each run writes one JSON file, ``RESULTS/NAME_seedS.json``; a rerun skips
runs whose file holds the same config and recomputes the others, so a study stopped at any
point continues where it stopped. A run shared by studies (the same name and config: full
SSD-KD, the 1% buffer of ``regimes`` and ``figure1``, ``no-phi`` and ``no-priority`` of
``ablation`` and ``regimes``) is run once, in the directory every study shares.

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
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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
from _efficiency_report import (
    diagnostics_table,
    load_runs,
    markdown_table,
    paired_table,
    plot,
    ranking_line,
    schedule_lines,
    summarize,
)
from _efficiency_runs import get_teacher, run_distill, validation_accuracy

from ssdkd.data import load_dataset
from ssdkd.engine.checkpoint import module_fingerprint
from ssdkd.engine.evaluation import evaluate_accuracy
from ssdkd.methods import (
    PRESETS,
    CMIConfig,
    DeepInversionConfig,
    GeneratorFamilyFields,
    MethodConfig,
    NAYERConfig,
    RealDataConfig,
    SSDKDConfig,
    config_from_dict,
    config_to_dict,
    noise_control_for,
    real_data_for,
)

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
REGIME_SHARES = (0.01, 0.02)
"""The small buffers of the ``regimes`` study, as shares of the training set."""
HARDER_SYNTHESIS: dict[str, Any] = {"adv_weight": 45.0}
"""The ``regimes`` study's harder synthesis, switches on the SSD-KD preset: three times the
adversarial weight, so the generator's images land less often in the class they are
asked for. Chosen on the validation split between two probes with φ off
(``docs/notes/2026-12-05-regime-4-probes.md``), made with the class-conditional
generator, as the one whose synthetic batches were the least class-balanced and the
least often of their target class."""
FIGURE1_SHARES = (0.01, 0.05, 0.10)
"""N of the ``figure1`` study, as shares of the training set."""
STUDIES = (
    "main",
    "ablation",
    "buffer",
    "regimes",
    "figure1",
    "embeddings",
    "schedule",
    "plugins",
)
PRESET_NAME = {"digits": "digits", "fashion-mnist": "fashion-mnist"}
DIAGNOSED = ("regimes",)
"""The studies whose report adds the diagnostics table (``DIAGNOSTICS``): what the
synthesis, the buffer and the draws of each arm were like."""


GENERATOR_FAMILY = ("dafl", "dfad", "zskt", "dfq")
"""The generator-family methods the main study runs where they have the dataset's preset."""
INVERSION_FAMILY = ("cmi", "nayer")
"""CMI and NAYER, which the main study runs where they have the dataset's preset."""
PLUGINS = {
    "dafl-phi": ("dafl", {"phi_weight": True}, "DAFL: φ weighting its one-hot term vs plain"),
    "dafl-buffer": ("dafl", {"transfer": "buffer"}, "DAFL: SSD-KD's transfer set vs live"),
    "dafl-buffer-uniform": (
        "dafl-buffer",
        {"priority_sampling": False},
        "DAFL's transfer set: uniform vs priority draws",
    ),
    "dfad-buffer": ("dfad", {"transfer": "buffer"}, "DFAD: SSD-KD's transfer set vs live"),
    "dfad-buffer-reservoir": (
        "dfad-buffer",
        {"refresh_policy": "reservoir"},
        "DFAD's transfer set: reservoir vs FIFO refresh",
    ),
}
"""The ``plugins`` study: SSD-KD's parts in a generator-family method (name: the arm it is
compared with, a method or an earlier arm; its switches on top of that arm; question).
The transfer set has the SSD-KD preset's size and the transfer set's default FIFO refresh
(the SSD-KD preset's reservoir is an arm of its own); the student takes as many steps as
with the live generator."""
TEXT_EMBEDDINGS = {"fashion-mnist": "benchmarks/embeddings/fashion-mnist_all-MiniLM-L6-v2.pt"}
"""NAYER's label embeddings from a text encoder (``benchmarks/label_embeddings.py``), by
dataset; relative to the repository root, where the benchmarks run."""


def _presets(dataset: str) -> dict[str, MethodConfig]:
    preset = PRESET_NAME[dataset]
    fast5 = "fast-5-" + preset
    presets = {
        "deepinversion": PRESETS["deepinversion"][preset],
        "fast-2": PRESETS["fast-dfkd"][preset],
        "fast-5": PRESETS["fast-dfkd"][fast5],
        "ssd-kd": PRESETS["ssd-kd"][preset],
    }
    presets.update(
        {
            name: PRESETS[name][preset]
            for name in GENERATOR_FAMILY + INVERSION_FAMILY
            if preset in PRESETS[name]
        }
    )
    return presets


def _shrink(config: MethodConfig) -> MethodConfig:
    """A few-second version of ``config`` for the smoke test."""
    if isinstance(config, DeepInversionConfig):
        return dataclasses.replace(config, rounds=2, kd_steps=4, iterations=4)
    if isinstance(config, GeneratorFamilyFields):
        return dataclasses.replace(config, rounds=2, warmup_rounds=0, kd_steps=2, iterations=2)
    if isinstance(config, CMIConfig | NAYERConfig):
        return dataclasses.replace(config, rounds=3, warmup_rounds=1, kd_steps=4, g_steps=2)
    return dataclasses.replace(config, rounds=3, warmup_rounds=1, kd_steps=4)


def _buffer_run(ssd: SSDKDConfig, share: float, train_size: int) -> tuple[str, SSDKDConfig]:
    """SSD-KD with a buffer of ``share`` of the training set (at least one synthesis batch),
    named by its size (``ssd-kd`` at the preset's own)."""
    size = max(ssd.synthesis_batch_size, round(share * train_size))
    name = "ssd-kd" if size == ssd.buffer_size else f"buffer-{size}"
    return name, dataclasses.replace(ssd, buffer_size=size)


def _kd_steps_arm(dataset: str) -> str | None:
    """The name of the ``regimes`` arm that gives SSD-KD Fast-2's KD steps per round,
    from the full presets (a quick run shrinks both presets' steps), or None where the
    two presets' steps agree."""
    presets = _presets(dataset)
    steps = presets["fast-2"].kd_steps
    return None if steps == presets["ssd-kd"].kd_steps else f"kd-steps-{steps}"


def study_pairs(dataset: str, study: str, train_size: int) -> list[tuple[str, str, str]]:
    """(question, arm A, arm B) of every paired comparison of ``study`` (none for the
    studies that are not paired)."""
    ssd = _presets(dataset)["ssd-kd"]
    assert isinstance(ssd, SSDKDConfig)
    if study == "regimes":
        pairs = [
            ("the preset's z-only generator: φ on vs off", "ssd-kd", "no-phi"),
            ("z-only generator (the preset) vs class-conditional (φ on)", "ssd-kd", "conditional"),
            ("harder synthesis: φ on vs off", "harder", "harder-no-phi"),
            ("harder synthesis vs the preset (φ on)", "harder", "ssd-kd"),
        ]
        for share in REGIME_SHARES:
            name, _ = _buffer_run(ssd, share, train_size)
            question = f"{100 * share:g}% buffer: priority vs uniform draws"
            pairs.append((question, name, f"{name}-uniform"))
        pairs += [
            ("priority δ = w·KL (paper) vs uniform", "ssd-kd", "no-priority"),
            ("priority δ = KL vs uniform", "priority-kl", "no-priority"),
            ("priority δ = KL vs w·KL", "priority-kl", "ssd-kd"),
            (
                "KD on stored teacher logits (no augmentation) vs the preset",
                "stored-logits",
                "ssd-kd",
            ),
        ]
        kd_arm = _kd_steps_arm(dataset)
        if kd_arm is not None:
            steps = _presets(dataset)["fast-2"].kd_steps
            question = f"Fast-2's {steps} KD steps per round vs the preset's {ssd.kd_steps}"
            pairs.append((question, kd_arm, "ssd-kd"))
    elif study == "embeddings":
        pairs = [("NAYER: text embeddings vs random codes", "nayer-text", "nayer")]
    elif study == "schedule":
        question = "NAYER with text embeddings: twice the rounds after the warm-up vs the preset's"
        pairs = [(question, "nayer-text-long", "nayer-text")]
    elif study == "plugins":
        presets = _presets(dataset)
        pairs = [
            (question, name, base)
            for name, (base, _, question) in PLUGINS.items()
            if _plugin_method(name) in presets
        ]
    elif study == "figure1":
        pairs = []
        for share in FIGURE1_SHARES:
            name, config = _buffer_run(ssd, share, train_size)
            question = f"N = {config.buffer_size} ({100 * share:g}%): synthetic vs real"
            pairs.append((question, name, f"real-kd-{config.buffer_size}"))
    else:
        return []
    # Shares that round to the same size (a small training set) are one comparison.
    unique: dict[tuple[str, str], tuple[str, str, str]] = {}
    for question, a, b in pairs:
        unique.setdefault((a, b), (question, a, b))
    return list(unique.values())


def _plugin_method(name: str) -> str:
    """The method under a ``plugins`` arm (an arm may build on another arm)."""
    while name in PLUGINS:
        name = PLUGINS[name][0]
    return name


def _unique_names(
    runs: list[tuple[str, MethodConfig, list[int]]],
) -> list[tuple[str, MethodConfig, list[int]]]:
    """``runs`` with one entry per name: shares that round to the same buffer size (a
    small training set) plan one run."""
    return list({name: (name, config, seeds) for name, config, seeds in runs}.values())


def study_runs(
    dataset: str, study: str, train_size: int, quick: bool = False
) -> list[tuple[str, MethodConfig, list[int]]]:
    """(name, config, seeds) of every run of ``study``."""
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
            *(
                (name, presets[name], three)
                for name in GENERATOR_FAMILY + INVERSION_FAMILY
                if name in presets
            ),
            ("noise-control", noise, three),
            ("real-data", real_data_for(ssd), three),
        ]
    if study == "ablation":
        return [("ssd-kd", ssd, three)] + [
            (name, dataclasses.replace(ssd, **changes), three)
            for name, changes in ABLATIONS.items()
        ]
    runs: list[tuple[str, MethodConfig, list[int]]] = []
    if study == "buffer":
        buffers = dict(_buffer_run(ssd, share, train_size) for share in BUFFER_SHARES)
        buffers["ssd-kd"] = ssd
        for name, config in sorted(buffers.items(), key=lambda item: item[1].buffer_size):
            runs.append((name, config, three))
        return runs
    if study == "regimes":
        harder = dataclasses.replace(ssd, **HARDER_SYNTHESIS)
        # The preset first: the report's schedules list the other arms' switches on it.
        runs = [
            ("ssd-kd", ssd, five),
            ("no-phi", dataclasses.replace(ssd, **ABLATIONS["no-phi"]), five),
            ("conditional", dataclasses.replace(ssd, conditional_generator=True), five),
            ("no-priority", dataclasses.replace(ssd, **ABLATIONS["no-priority"]), five),
            ("priority-kl", dataclasses.replace(ssd, priority_form="kl"), five),
            ("stored-logits", dataclasses.replace(ssd, kd_augment=False), five),
            ("harder", harder, five),
            ("harder-no-phi", dataclasses.replace(harder, use_phi=False), five),
        ]
        kd_arm = _kd_steps_arm(dataset)
        if kd_arm is not None:
            more = dataclasses.replace(ssd, kd_steps=presets["fast-2"].kd_steps)
            runs.append((kd_arm, more, five))
        for share in REGIME_SHARES:
            name, config = _buffer_run(ssd, share, train_size)
            uniform = dataclasses.replace(config, **ABLATIONS["no-priority"])
            runs += [(name, config, five), (f"{name}-uniform", uniform, five)]
        return _unique_names(runs)
    if study == "figure1":
        for share in FIGURE1_SHARES:
            name, config = _buffer_run(ssd, share, train_size)
            real = dataclasses.replace(
                real_data_for(ssd), target="teacher", train_images=config.buffer_size
            )
            runs += [(name, config, three), (f"real-kd-{config.buffer_size}", real, three)]
        return _unique_names(runs)
    if study == "plugins":
        planned: dict[str, MethodConfig] = {}
        for name, (base, switches, _) in PLUGINS.items():
            config = planned.get(base, presets.get(base))
            if config is None:
                continue  # the method has no preset for the dataset yet
            if switches.get("transfer") == "buffer":
                switches = {**switches, "buffer_size": ssd.buffer_size}
            planned.setdefault(base, config)
            planned[name] = dataclasses.replace(config, **switches)
        return [(name, config, three) for name, config in planned.items()]
    if study in ("embeddings", "schedule"):
        nayer, path = presets.get("nayer"), TEXT_EMBEDDINGS.get(dataset)
        if not isinstance(nayer, NAYERConfig) or path is None:
            return []
        text = dataclasses.replace(nayer, embeddings_file=path)
        if study == "embeddings":
            return [("nayer", nayer, three), ("nayer-text", text, three)]
        longer = dataclasses.replace(text, rounds=2 * text.rounds - text.warmup_rounds)
        return [("nayer-text", text, three), ("nayer-text-long", longer, three)]
    raise ValueError(f"Expected study to be one of {STUDIES}, got {study!r}")


# ---------------------------------------------------------------- running


def results_directory(root: Path, dataset: str) -> Path:
    """The run-file directory under ``root`` that the studies of ``dataset`` share."""
    return root / f"efficiency_{dataset}"


def run_file(results: Path, name: str, seed: int) -> Path:
    return results / f"{name}_seed{seed}.json"


def _is_current(run: dict[str, Any], recorded: dict[str, Any], header: dict[str, Any]) -> bool:
    """Whether a run file holds the planned config, distilled from the study's teacher
    (``real-data`` records it too, though it does not learn from it). A field added to a
    config class after the run counts at its default, which keeps the behaviour the run
    had (``synthesis_share=1.0``)."""
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
    todo: list[tuple[str, MethodConfig, int]] = []
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
    if args.seeds is not None:
        todo = [item for item in todo if item[2] in args.seeds]
    # Seeds outermost: a study stopped early holds every name for its first seeds.
    todo.sort(key=lambda item: item[2])
    seen: set[tuple[str, int]] = set()
    for name, config, seed in todo:
        if (name, seed) in seen:
            continue
        seen.add((name, seed))
        path = run_file(results, name, seed)
        recorded = config_to_dict(config)
        if path.exists() and _is_current(json.loads(path.read_text()), recorded, header):
            continue
        start = time.perf_counter()
        history, student = run_distill(config, seed, teacher=teacher, args=args, data=data)
        wall = time.perf_counter() - start
        # The real-data runs may train on the validation images: not measured there.
        on_real = isinstance(config, RealDataConfig)
        validation = None if on_real else validation_accuracy(student, data)
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
        if on_real:
            run["train_images"] = config.train_images or int(data.x_train.shape[0])
        write_json(path, run)
        final = history[-1]
        print(
            f"[{time.strftime('%H:%M:%S')}] {name} seed {seed}: acc {100 * final['accuracy']:.2f}% "
            f"overall {final['overall_seconds']:.1f} s wall {run['wall_seconds']:.1f} s",
            flush=True,
        )


# ---------------------------------------------------------------- summaries


# ---------------------------------------------------------------- main


def current_runs(
    results: Path, dataset: str
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """The study header of ``results``, its current runs and every run file in it.

    Only runs of the planned configs from the study's teacher are current; files left by
    an earlier preset or teacher are outdated until a rerun replaces them.
    """
    if not (results / "study.json").is_file():
        raise SystemExit(f"no study in {results}: run the study first (without --report-only)")
    header = json.loads((results / "study.json").read_text())
    recorded = {
        name: config_to_dict(config)
        for study in STUDIES
        for name, config, _ in study_runs(dataset, study, header["train_size"], header["quick"])
    }
    every_run = load_runs(results)
    runs = [
        run
        for run in every_run
        if run["name"] in recorded and _is_current(run, recorded[run["name"]], header)
    ]
    return header, runs, every_run


def study_status(done: list[dict[str, Any]], planned: list[tuple[str, Any, list[int]]]) -> str:
    """A study's status: "complete", or how many of its planned (name, seed) runs are done: a run
    shared with another study that plans more seeds (the main study's five SSD-KD seeds in
    the three-seed ablation) counts once per planned seed, not per file."""
    wanted = {(name, seed) for name, _, seeds in planned for seed in seeds}
    have = wanted & {(run["name"], run["seed"]) for run in done}
    return "complete" if have == wanted else f"**partial: {len(have)} of {len(wanted)} runs**"


def seed_range(seeds: Iterable[int]) -> str:
    """A section's seeds, "seed 0" or "seeds 0–4": the lowest and highest of ``seeds``."""
    values = list(seeds)
    low, high = min(values), max(values)
    return f"seed {low}" if low == high else f"seeds {low}–{high}"


def report(args: argparse.Namespace) -> None:
    """Write each study's markdown section and plot from the run files."""
    results = Path(args.results)
    header, runs, every_run = current_runs(results, args.dataset)
    plans = {
        study: study_runs(args.dataset, study, header["train_size"], header["quick"])
        for study in STUDIES
    }
    if not runs:
        raise SystemExit(f"no current run files in {results}")
    counted = {id(run) for run in runs}
    # Runs kept in another directory (--results) take Fast-2's median from the shared one.
    shared = results_directory(results.parent, args.dataset)
    fast2: list[dict[str, Any]] = []
    if not any(run["name"] == "fast-2" for run in runs) and (shared / "study.json").is_file():
        fast2 = [run for run in current_runs(shared, args.dataset)[1] if run["name"] == "fast-2"]
    summary = summarize(runs, header["teacher_accuracy"], header["num_classes"], fast2)
    (results / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    for study in args.study:
        planned = plans[study]
        names = [name for name, _, _ in planned]
        done = [r for r in runs if r["name"] in names]
        # Only this study's files: a section names its own runs, not the other studies'.
        outdated = sorted(
            f"{r['name']}_seed{r['seed']}"
            for r in every_run
            if id(r) not in counted and r["name"] in names
        )
        shown = shown_path(results)
        figure = Path(args.figures) / f"efficiency_{study}_{args.dataset}.png"
        command = (
            f"OMP_NUM_THREADS=2 python benchmarks/efficiency.py --dataset {args.dataset} "
            f"--study {study}"
        )
        if not done:
            if not outdated:
                print(f"{study}: no run files yet, no section written")
                continue
            # A section drawn from runs that are no longer current would stand as if it were.
            figure.unlink(missing_ok=True)
            body = [
                f"No current runs: the {len(outdated)} run file(s) of this study in `{shown}/` "
                "are of an earlier preset or teacher and are not counted. Rerun the study:",
                "",
                "```bash",
                command,
                "```",
            ]
            write_section(
                Path(args.markdown), f"efficiency-{study}-{args.dataset}", "\n".join(body)
            )
            print("\n".join(body))
            continue
        status = study_status(done, planned)
        machines = {machine_line(r["machine"]) for r in done}
        commits = sorted({str(r["machine"].get("git_commit")) for r in done})
        title = f"{args.dataset}: {study}"
        finished = sorted(str(r["finished"])[:10] for r in done)
        body = [
            f"Teacher `{header['teacher']}` ({100 * header['teacher_accuracy']:.2f}% test), "
            f"student `{header['student']}`; final-round test accuracy, "
            f"{seed_range(r['seed'] for r in done)} ({status}). "
            f"Machine: {'; '.join(sorted(machines))}. Runs finished {finished[0]}"
            + (f" to {finished[-1]}" if finished[-1] != finished[0] else "")
            + f"; library {', '.join(commits)}; run files `{shown}/`"
            + (f" ({len(outdated)} outdated file(s) not counted)" if outdated else "")
            + (
                f"; Fast-2's runs from `{shown_path(shared)}/`."
                if fast2 and any(name in summary["methods"] for name in names)
                else "."
            ),
            "",
            "```bash",
            command,
            "```",
            "",
            markdown_table(summary, names),
            "",
            *([ranking_line(summary, names), ""] if study == "main" else []),
            *(
                [table, ""]
                if (
                    table := paired_table(
                        done, study_pairs(args.dataset, study, header["train_size"])
                    )
                )
                else []
            ),
            *(
                [
                    "Diagnostics (the mean over a run's rounds after its warm-up, the "
                    "median over its seeds):",
                    "",
                    diagnostics_table(done, names),
                    "",
                ]
                if study in DIAGNOSED
                else []
            ),
            '??? info "Schedules"',
            "",
            *(f"    {line}" for line in schedule_lines(done, names)),
        ]
        try:
            plot(done, names, summary, figure, title)
            try:
                relative = figure.resolve().relative_to(Path(args.markdown).resolve().parent)
                body += ["", f"![{title}]({relative.as_posix()})"]
            except ValueError:
                body += ["", f"Plot: `{figure}`"]
        except ImportError:
            pass
        write_section(Path(args.markdown), f"efficiency-{study}-{args.dataset}", "\n".join(body))
        print("\n".join(body))


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
    parser.add_argument("--study", nargs="+", choices=STUDIES, default=["main"])
    parser.add_argument(
        "--runs",
        nargs="+",
        default=None,
        metavar="NAME",
        help="run only these names of the chosen studies (e.g. ssd-kd fast-2), seed by seed; "
        "the report still covers every run",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=None,
        metavar="SEED",
        help="run only these seeds of the chosen runs; the report still covers every run",
    )
    parser.add_argument("--quick", action="store_true", help="tiny budget, one seed (smoke test)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--results", default=None, help="run-file directory")
    parser.add_argument("--figures", default=str(ROOT / "docs" / "figures"))
    parser.add_argument("--markdown", default=str(ROOT / "docs" / "results.md"))
    parser.add_argument("--report-only", action="store_true", help="only redraw the report")
    parser.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "ssdkd-bench"))
    args = parser.parse_args(argv)
    if args.results is None:
        args.results = str(results_directory(ROOT / "docs" / "results", args.dataset))
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

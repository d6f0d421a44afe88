"""The efficiency study's report: medians, tables, plots and the markdown sections."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from _common import machine_line


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


def _live_stream(config: dict[str, Any]) -> bool:
    """Whether a run's student learnt from a generator's live stream, so the transfer-set
    fields its config carries (``buffer_size``, ``refresh_policy``) went unused."""
    return config.get("transfer") == "live"


def images_learnt_from(run: dict[str, Any]) -> float:
    """Images the student learns from: the buffer, the pool or the noise at the end, or,
    for a generator-family method learning from its live stream, the images of its
    student steps (a fresh batch per step, or one batch per alternation of ``kd_steps``
    steps with ``student_images="same"``)."""
    config = run["config"]
    if config.get("config_class") == "RealDataConfig":
        return float(run["train_images"])
    if _live_stream(config):
        steps = run["history"][-1]["kd_steps"]
        if config["student_images"] == "same":
            return float(steps // config["kd_steps"] * config["synthesis_batch_size"])
        return float(steps * config["kd_batch_size"])
    if "buffer_size" in config:
        return float(min(config["buffer_size"], run["history"][-1]["images_synthesized"]))
    if "pool_size" in config:
        return float(config["pool_size"])
    capacity = config.get("pool_capacity", 0)
    made = run["history"][-1]["images_synthesized"]
    return float(min(capacity, made) if capacity else made)


def summarize(
    runs: list[dict[str, Any]],
    teacher_accuracy: float,
    num_classes: int,
    fast2_runs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Per-name medians over seeds and times to reach Fast-2's and the teacher's accuracy.

    Fast-2's runs are those of ``runs``, or where it has none ``fast2_runs`` (another
    directory's, for a study that does not run Fast-2 itself)."""
    chance = 1.0 / num_classes
    names = list(dict.fromkeys(run["name"] for run in runs))
    by_name = {name: [run for run in runs if run["name"] == name] for name in names}
    finals = {
        name: [float(run["history"][-1]["accuracy"]) for run in group]
        for name, group in by_name.items()
    }
    fast2_group = by_name.get("fast-2") or fast2_runs or []
    targets = {"teacher_95": 0.95 * teacher_accuracy}
    if fast2_group:
        targets["fast-2"] = _median([float(run["history"][-1]["accuracy"]) for run in fast2_group])
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
            "pool_images": _median([images_learnt_from(run) for run in group]),
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
        fast2 = {run["seed"]: run for run in fast2_group}
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
    fast2 = summary["targets"].get("fast-2")
    target = f"{100 * fast2:.2f}%" if fast2 is not None else "no Fast-2 runs"
    lines = [
        "| run | seeds | final accuracy % median (min–max) | runs at chance "
        f"| time to Fast-2's median ({target}) "
        "| images synthesised | images learnt from | KD steps | overall s (synthesis + KD) "
        "| validation accuracy % median |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        entry = summary["methods"].get(name)
        if entry is None:
            continue
        reach = _fmt_time(entry, "fast-2") if "fast-2" in summary["targets"] else "–"
        lines.append(
            f"| {name} | {len(entry['seeds'])} | {_fmt_acc(entry)} | {entry['runs_at_chance']} "
            f"| {reach} | {entry['images_synthesized']:.0f} "
            f"| {entry['pool_images']:.0f} | {entry['kd_steps']:.0f} "
            f"| {entry['overall_seconds']:.0f} ({entry['synthesis_seconds']:.0f} + "
            f"{entry['kd_seconds']:.0f}) | {_fmt_percent(entry['validation_accuracy_median'])} |"
        )
    return "\n".join(lines)


def line_styles(count: int) -> list[tuple[str, str]]:
    """(colour, line style) of ``count`` plotted runs, each pair distinct: matplotlib's ten
    default colours, solid, then dashed, then dotted."""
    colours = [f"C{i}" for i in range(10)]
    styles = ["-", "--", ":", "-."]
    if count > len(colours) * len(styles):
        raise ValueError(f"Expected at most {len(colours) * len(styles)} runs, got {count}")
    return [(colours[i % 10], styles[i // 10]) for i in range(count)]


def plot(
    runs: list[dict[str, Any]], names: list[str], summary: dict[str, Any], path: Path, title: str
) -> None:
    """Accuracy vs overall seconds: median over seeds per round, each seed thin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    present = [name for name in names if any(run["name"] == name for run in runs)]
    for name, (colour, style) in zip(present, line_styles(len(present)), strict=True):
        group = [run for run in runs if run["name"] == name]
        rounds = min(len(run["history"]) for run in group)
        x = [
            _median([run["history"][i]["overall_seconds"] for run in group]) for i in range(rounds)
        ]
        y = [_median([100 * run["history"][i]["accuracy"] for run in group]) for i in range(rounds)]
        ax.plot(x, y, label=name, color=colour, linestyle=style)
        for run in group:
            ax.plot(
                [r["overall_seconds"] for r in run["history"]],
                [100 * r["accuracy"] for r in run["history"]],
                color=colour,
                linestyle=style,
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
    """One line per name: the budget fields of its config (a generator-family method's
    buffer fields only where it learns from the buffer), then every other field in which
    it differs from the first name's config (what tells an ablation's variants apart)."""
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
        "train_images",
        "target",
        "temperature",
        "student_lr",
    )
    configs = {}
    for name in names:
        run = next((r for r in runs if r["name"] == name), None)
        if run is not None:
            configs[name] = run["config"]
    if not configs:
        return []
    reference = next(iter(configs.values()))
    lines = []
    for name, config in configs.items():
        unused = ("buffer_size", "refresh_policy") if _live_stream(config) else ()
        parts = [f"{f}={config[f]}" for f in fields if f in config and f not in unused]
        if config is not reference and config.get("config_class") == reference.get("config_class"):
            parts += [
                f"**{key}={value}**"
                for key, value in config.items()
                if key not in fields and reference.get(key) != value
            ]
        lines.append(f"- `{name}`: {', '.join(parts)}")
    return lines


def paired_difference(a: dict[int, float], b: dict[int, float]) -> dict[str, Any]:
    """Mean of ``a[s] − b[s]`` over the seeds both have, with its 95% Student-t interval.

    The arms of a pair share their seeds and per-role random streams, so their difference
    on one seed holds out the seed's own luck; the interval is that of the mean of the
    per-seed differences (``nan`` with fewer than 2 seeds). ``wins``: seeds where a > b.
    """
    from scipy.stats import t

    seeds = sorted(set(a) & set(b))
    diffs = [a[s] - b[s] for s in seeds]
    n = len(diffs)
    mean = statistics.fmean(diffs) if diffs else math.nan
    half = (
        float(t.ppf(0.975, n - 1)) * statistics.stdev(diffs) / math.sqrt(n) if n >= 2 else math.nan
    )
    return {
        "seeds": seeds,
        "differences": diffs,
        "mean": mean,
        "low": mean - half,
        "high": mean + half,
        "wins": sum(d > 0 for d in diffs),
    }


def _interval(pair: dict[str, Any]) -> str:
    """``pair``'s mean difference with its 95% interval, in points ("[–]" on one seed)."""
    if len(pair["seeds"]) < 2:
        return f"{100 * pair['mean']:+.2f} [–]"
    return f"{100 * pair['mean']:+.2f} [{100 * pair['low']:+.2f}, {100 * pair['high']:+.2f}]"


def pair_reading(pair: dict[str, Any]) -> str:
    """What a pair's test interval says: "A higher" or "B higher" where it excludes zero,
    "not separated" where it holds zero, "one seed" where there is no interval."""
    if len(pair["seeds"]) < 2:
        return "one seed"
    if pair["low"] > 0:
        return "A higher"
    if pair["high"] < 0:
        return "B higher"
    return "not separated"


def paired_table(runs: list[dict[str, Any]], pairs: list[tuple[str, str, str]]) -> str:
    """One row per (question, arm A, arm B): both medians and the paired A − B with its
    95% interval, in points of final test accuracy, the same on the validation split
    (over the seeds where both arms measured it; "–" where none did), and what the test
    interval says (``pair_reading``); empty where no pair has a common seed.

    The last column counts the seeds whose two arms ran on different machines (by
    ``machine_line``; a run without a machine record counts as its own machine): the same
    seed and streams give the same run only on one kind of CPU, so such a seed's pair
    shares its random numbers but not its floating-point arithmetic."""
    finals: dict[str, dict[int, float]] = {}
    validation: dict[str, dict[int, float]] = {}
    machines: dict[str, dict[int, str | None]] = {}
    for run in runs:
        finals.setdefault(run["name"], {})[run["seed"]] = float(run["history"][-1]["accuracy"])
        if run.get("validation_accuracy") is not None:
            validation.setdefault(run["name"], {})[run["seed"]] = float(run["validation_accuracy"])
        machine = run.get("machine")
        machines.setdefault(run["name"], {})[run["seed"]] = (
            machine_line(machine) if machine else None
        )
    lines = [
        "| question | A | B | seeds | A median % | B median % "
        "| A − B mean, points [95% interval] | seeds A > B "
        "| validation A − B, points [95% interval] | reading | seeds on two machines |",
        "|---|---|---|---:|---:|---:|---|---:|---|---|---:|",
    ]
    for question, arm_a, arm_b in pairs:
        a, b = finals.get(arm_a, {}), finals.get(arm_b, {})
        pair = paired_difference(a, b)
        n = len(pair["seeds"])
        if n == 0:
            continue
        on_validation = paired_difference(validation.get(arm_a, {}), validation.get(arm_b, {}))
        medians = [_median([arm[s] for s in pair["seeds"]]) for arm in (a, b)]
        mixed = sum(
            machines[arm_a][s] is None or machines[arm_a][s] != machines[arm_b][s]
            for s in pair["seeds"]
        )
        lines.append(
            f"| {question} | {arm_a} | {arm_b} | {n} | {_fmt_percent(medians[0])} "
            f"| {_fmt_percent(medians[1])} | {_interval(pair)} | {pair['wins']}/{n} "
            f"| {_interval(on_validation) if on_validation['seeds'] else '–'} "
            f"| {pair_reading(pair)} | {mixed} |"
        )
    return "\n".join(lines) if len(lines) > 2 else ""


DIAGNOSTICS = (
    ("synth_class_entropy", "synthetic batches' class entropy"),
    ("target_agreement", "synthetic images in their target class"),
    ("phi_mean", "φ mean"),
    ("data_class_entropy", "buffer's class entropy"),
    ("data_teacher_confidence", "teacher's confidence on the buffer"),
    ("kl", "buffer's KL·T² teacher‖student"),
    ("weight_ess", "importance weights' ESS / batch"),
    ("kl_ratio", "drawn KL / buffer KL"),
)
"""The per-round quantities of the diagnostics table (key in a round's record, column):
the teacher's class entropies are normalised by log(classes); its confidence is its mean
top softmax probability on the images stored in the buffer (how close to a class
boundary the images lie); the KL is the round's estimate of the buffer's mean KL·T²
(unbiased under priority draws: each drawn image's KL over N·P(i)), how much the student
still disagrees with the teacher on what it learns from; "drawn KL / buffer KL" is the
mean KL of the drawn batch over that estimate (1 for uniform draws, above 1 as priority
draws favour high-KL images)."""


def _round_value(record: dict[str, Any], key: str) -> float | None:
    if key == "kl_ratio":
        drawn, whole = record.get("kl_drawn"), record.get("kl")
        return drawn / whole if drawn is not None and whole else None
    value = record.get(key)
    return None if value is None else float(value)


def diagnostics_table(runs: list[dict[str, Any]], names: list[str]) -> str:
    """Per name, each ``DIAGNOSTICS`` quantity averaged over a run's rounds after its
    warm-up, the median over its seeds ("–" where no run records it); empty without runs.
    What tells a reader why two arms differ: how balanced and on-target the synthesis
    was, what the buffer held and how far the draws departed from uniform."""
    lines = [
        "| run | seeds | " + " | ".join(header for _, header in DIAGNOSTICS) + " |",
        "|---|---:|" + "---:|" * len(DIAGNOSTICS),
    ]
    for name in names:
        own = [run for run in runs if run["name"] == name]
        if not own:
            continue
        cells = []
        for key, _ in DIAGNOSTICS:
            means = []
            for run in own:
                warmup = run["config"].get("warmup_rounds", 0)
                values = [
                    value
                    for record in run["history"]
                    if record["round"] > warmup and (value := _round_value(record, key)) is not None
                ]
                if values:
                    means.append(statistics.fmean(values))
            cells.append(f"{_median(means):.3f}" if means else "–")
        lines.append(f"| {name} | {len(own)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""


CONTROLS = ("real-data", "noise-control")
"""The runs that are not data-free methods (the bound and the floor)."""


def ranking_line(summary: dict[str, Any], names: list[str]) -> str:
    """The data-free runs of ``names`` ranked by median final accuracy, and SSD-KD's
    place among them, in one sentence."""
    entries = [
        (name, summary["methods"][name]["final_accuracy_median"])
        for name in names
        if name in summary["methods"] and name not in CONTROLS
    ]
    if not entries:
        return ""
    entries.sort(key=lambda item: -item[1])
    order = ", ".join(f"{name} {100 * acc:.2f}%" for name, acc in entries)
    line = f"Data-free methods by median final accuracy: {order}."
    place = [name for name, _ in entries].index("ssd-kd") + 1 if "ssd-kd" in dict(entries) else 0
    if place:
        line += f" SSD-KD ranks {place} of {len(entries)}."
    return line


def same_machine_speed(runs: list[dict[str, Any]], method: str, reference: str = "fast-2") -> str:
    """A markdown table of ``method``'s time to ``reference``'s final accuracy against the
    reference's own, per seed whose two runs ran on the same kind of machine (``runs`` may
    come from several run directories), and the median speed-up; empty without a pair.

    The target of a seed is that seed's reference run's final accuracy; each time is the
    overall seconds (synthesis + KD) at the first evaluated round at or above it, so the
    reference's time is at most its whole run.
    """
    rows: list[str] = []
    speedups: list[float] = []
    references = [run for run in runs if run["name"] == reference]
    for run in sorted((r for r in runs if r["name"] == method), key=lambda r: r["seed"]):
        machine = machine_line(run["machine"])
        twin = next(
            (
                r
                for r in references
                if r["seed"] == run["seed"] and machine_line(r["machine"]) == machine
            ),
            None,
        )
        if twin is None:
            continue
        target = float(twin["history"][-1]["accuracy"])
        own = time_to_reach(twin["history"], target)
        took = time_to_reach(run["history"], target)
        row = f"| {run['seed']} | {run['machine']['cpu']} | {100 * target:.2f} | {own:.0f} "
        if math.isfinite(took):
            speedups.append(own / took)
            row += f"| {took:.0f} | {own / took:.2f}× |"
        else:
            row += "| not reached | – |"
        rows.append(row)
    if not rows:
        return ""
    return "\n".join(
        [
            f"| seed | machine | {reference} final % | {reference} s to it | {method} s to it "
            f"| speed-up ({reference} s / {method} s) |",
            "|---:|---|---:|---:|---:|---:|",
            *rows,
            "",
            f"{method} reached {reference}'s final accuracy on {len(speedups)} of {len(rows)} "
            f"seed(s); median speed-up {_median(speedups):.2f}×."
            if speedups
            else f"{method} reached {reference}'s final accuracy on none of {len(rows)} seed(s).",
        ]
    )

"""The paired difference of two arms of a study, the ranking line of the main study, the
same-machine speed comparison, the images a run learnt from, the schedule lines, the
diagnostics table and Fast-2's target from another directory
(benchmarks/_efficiency_report.py)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from _efficiency_report import (
    diagnostics_table,
    images_learnt_from,
    line_styles,
    markdown_table,
    paired_difference,
    paired_table,
    ranking_line,
    same_machine_speed,
    schedule_lines,
    summarize,
)

accuracies = st.lists(st.floats(0.0, 1.0), min_size=2, max_size=8)


@given(accuracies, st.floats(-0.2, 0.2))
def test_an_arm_shifted_by_a_constant_differs_by_it_with_no_spread(values, shift):
    a = {seed: value + shift for seed, value in enumerate(values)}
    b = dict(enumerate(values))
    pair = paired_difference(a, b)
    assert pair["mean"] == pytest.approx(shift, abs=1e-9)
    assert pair["high"] - pair["low"] == pytest.approx(0.0, abs=1e-9)


def test_the_interval_is_the_paired_t_interval_over_the_common_seeds():
    a = {0: 0.84, 1: 0.82, 2: 0.85, 3: 0.83, 9: 0.5}
    b = {0: 0.83, 1: 0.83, 2: 0.82, 3: 0.82, 7: 0.9}
    pair = paired_difference(a, b)
    diffs = [0.01, -0.01, 0.03, 0.01]
    mean = sum(diffs) / 4
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 3)
    half = 3.182446305284263 * sd / 2  # t(0.975, 3) · sd / √4
    assert pair["seeds"] == [0, 1, 2, 3]
    assert (pair["mean"], pair["low"], pair["high"]) == pytest.approx(
        (mean, mean - half, mean + half)
    )
    assert pair["wins"] == 3


def test_a_pair_with_one_common_seed_has_no_interval_and_the_table_says_so():
    pair = paired_difference({0: 0.8}, {0: 0.7, 1: 0.6})
    assert pair["mean"] == pytest.approx(0.1)
    assert math.isnan(pair["low"])
    assert math.isnan(pair["high"])
    runs = [
        {"name": name, "seed": 0, "history": [{"accuracy": acc}]}
        for name, acc in (("x", 0.8), ("y", 0.7))
    ]
    table = paired_table(runs, [("x or y", "x", "y"), ("absent", "x", "z")])
    assert "| x or y | x | y | 1 | 80.00 | 70.00 | +10.00 [–] | 1/1 | – | one seed | 1 |" in table
    assert "absent" not in table
    assert paired_table(runs, [("absent", "x", "z")]) == ""


def test_the_table_reads_each_pair_and_gives_its_validation_difference():
    """Guards against a pair table a reader must decode interval by interval, and one that
    showed only the test split, which no preset may be chosen on."""

    def run(name: str, seed: int, test: float, validation: float | None) -> dict:
        return {
            "name": name,
            "seed": seed,
            "validation_accuracy": validation,
            "history": [{"accuracy": test}],
        }

    runs = [run("a", s, 0.85 + 0.01 * s, 0.86 + 0.01 * s) for s in range(3)]
    runs += [run("b", s, 0.84 + 0.01 * s + 0.001 * s, 0.87 + 0.01 * s) for s in range(3)]
    runs += [run("c", s, 0.85 + 0.02 * (s % 2) - 0.01, None) for s in range(3)]
    table = paired_table(runs, [("a or b", "a", "b"), ("b or a", "b", "a"), ("a or c", "a", "c")])
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in table.splitlines()[2:]}
    # a − b on test: 1.0, 0.9, 0.8 points; on validation −1.0 on every seed.
    assert rows["a or b"][6].startswith("+0.90 [")
    assert rows["a or b"][8] == "-1.00 [-1.00, -1.00]"
    assert rows["a or b"][9] == "A higher"
    assert rows["b or a"][9] == "B higher"
    # a − c: 1.0, 0.0, 3.0 points, an interval holding zero; c has no validation.
    assert rows["a or c"][9] == "not separated"
    assert rows["a or c"][8] == "–"


def test_the_table_counts_the_seeds_whose_arms_ran_on_different_machines():
    """Guards against a pair table that hid seeds whose two arms ran on different CPUs
    (not the same arithmetic, so not the same run for the same seed and streams)."""
    intel = {"cpu": "Intel", "cores": 2, "python": "3", "torch": "2", "torch_threads": 2}
    amd = intel | {"cpu": "AMD"}
    cpus = {
        ("x", 0): intel,
        ("y", 0): intel,
        ("x", 1): intel,
        ("y", 1): amd,
        ("x", 2): amd,
        ("y", 2): amd,
    }
    runs = [
        {"name": name, "seed": seed, "machine": machine, "history": [{"accuracy": 0.8}]}
        for (name, seed), machine in cpus.items()
    ]
    table = paired_table(runs, [("x or y", "x", "y")])
    # Seed 0 both on Intel, seed 2 both on AMD: only seed 1's arms ran on two machines.
    assert table.splitlines()[-1].endswith(
        "| 3 | 80.00 | 80.00 | +0.00 [+0.00, +0.00] | 0/3 | – | not separated | 1 |"
    )


def test_a_table_without_fast2_runs_says_so_in_its_header():
    """Guards against a header reading "Fast-2's median (nan%)" for a results directory
    with no Fast-2 runs of its own or beside it."""
    machine = {"cpu": "x", "cores": 2, "python": "3", "torch": "2", "torch_threads": 2}
    history = [_round(1) | {"accuracy": 0.8, "images_synthesized": 0, "kd_steps": 0}]
    history[0].update(synthesis_seconds=1.0, kd_seconds=1.0)
    run = {"name": "ssd-kd", "seed": 0, "config": {}, "machine": machine, "history": history}
    header = markdown_table(summarize([run], 0.9, 10), ["ssd-kd"]).splitlines()[0]
    assert "time to Fast-2's median (no Fast-2 runs)" in header
    assert "nan" not in header


def test_the_ranking_names_ssdkd_place_among_the_data_free_methods_only():
    summary = {
        "methods": {
            name: {"final_accuracy_median": acc}
            for name, acc in (("ssd-kd", 0.83), ("fast-2", 0.84), ("real-data", 0.90), ("di", 0.85))
        }
    }
    line = ranking_line(summary, ["ssd-kd", "fast-2", "real-data", "di", "absent"])
    assert line == (
        "Data-free methods by median final accuracy: di 85.00%, fast-2 84.00%, "
        "ssd-kd 83.00%. SSD-KD ranks 3 of 3."
    )


def _timed_run(name: str, seed: int, cpu: str, curve: list[tuple[float, float]]) -> dict:
    machine = {"cpu": cpu, "cores": 2, "python": "3.11", "torch": "2", "torch_threads": 2}
    history = [{"overall_seconds": t, "accuracy": a} for t, a in curve]
    return {"name": name, "seed": seed, "machine": machine, "history": history}


def test_speed_pairs_only_runs_of_one_seed_on_one_kind_of_machine():
    """A method run on one machine compared with the reference's run of another machine
    would turn a machine's speed into the method's: such seeds are left out."""
    runs = [
        _timed_run("fast-2", 0, "amd", [(100, 0.80), (200, 0.84), (300, 0.83)]),
        _timed_run("fast-2", 1, "intel", [(100, 0.80), (400, 0.85)]),
        _timed_run("nayer", 0, "intel", [(50, 0.86)]),
        _timed_run("nayer", 1, "intel", [(80, 0.84), (100, 0.86)]),
        _timed_run("nayer", 2, "intel", [(80, 0.84)]),
    ]
    table = same_machine_speed(runs, "nayer", "fast-2")
    # Seed 1 only: the target is Fast-2's final 85%, which it reached at 400 s, NAYER at 100 s.
    assert "| 1 | intel | 85.00 | 400 | 100 | 4.00× |" in table
    assert "| 0 |" not in table
    assert "| 2 |" not in table
    assert "reached fast-2's final accuracy on 1 of 1 seed(s); median speed-up 4.00×" in table


def test_speed_counts_the_reference_at_its_first_round_at_its_final_accuracy_and_misses():
    runs = [
        _timed_run("fast-2", 0, "amd", [(100, 0.80), (200, 0.84), (300, 0.83)]),
        _timed_run("nayer", 0, "amd", [(100, 0.80), (150, 0.83)]),
        _timed_run("fast-2", 1, "amd", [(100, 0.80)]),
        _timed_run("nayer", 1, "amd", [(60, 0.70)]),
    ]
    table = same_machine_speed(runs, "nayer", "fast-2")
    assert "| 0 | amd | 83.00 | 200 | 150 | 1.33× |" in table
    assert "| 1 | amd | 80.00 | 100 | not reached | – |" in table
    assert "on 1 of 2 seed(s)" in table
    assert same_machine_speed(runs, "cmi", "fast-2") == ""


def test_a_live_generator_stream_counts_the_images_of_its_student_steps():
    """Prevents the DFQ row counting its config's default ``buffer_size`` (5,000, unused
    with ``transfer="live"``) as the images its student learnt from."""
    last = {"images_synthesized": 675840, "kd_steps": 4800}
    live = {"buffer_size": 5000, "transfer": "live", "kd_steps": 10, "kd_batch_size": 128}
    fresh = {"history": [last], "config": {**live, "student_images": "fresh"}}
    # One generator batch of 256 per alternation of 10 student steps: 480 batches.
    same = {
        "history": [last],
        "config": {**live, "student_images": "same", "synthesis_batch_size": 256},
    }
    buffered = {"history": [last], "config": {"buffer_size": 5000, "transfer": "buffer"}}
    ssd_kd = {"history": [last], "config": {"buffer_size": 3840}}
    assert images_learnt_from(fresh) == 4800 * 128
    assert images_learnt_from(same) == 480 * 256
    assert images_learnt_from(buffered) == 5000
    assert images_learnt_from(ssd_kd) == 3840


def test_a_live_stream_schedule_does_not_show_the_buffer_it_does_not_use():
    """Prevents the DFQ schedule line showing ``buffer_size=5000, refresh_policy=fifo``,
    defaults of a transfer set its live stream never builds."""
    config = {"rounds": 16, "buffer_size": 5000, "refresh_policy": "fifo", "temperature": 1.0}
    runs = [
        {"name": "dfq", "config": {**config, "transfer": "live"}},
        {"name": "dfq-buffer", "config": {**config, "transfer": "buffer"}},
    ]
    live, buffered = schedule_lines(runs, ["dfq", "dfq-buffer"])
    assert live == "- `dfq`: rounds=16, temperature=1.0"
    assert buffered.startswith("- `dfq-buffer`: rounds=16, buffer_size=5000, refresh_policy=fifo")


def _round(number: int, **values: float) -> dict[str, float]:
    return {"round": number, "accuracy": 0.5, "overall_seconds": 10.0 * number, **values}


def test_diagnostics_average_the_rounds_after_the_warmup_then_take_the_median_seed():
    def run(seed: int, ess: list[float]) -> dict:
        history = [_round(1, weight_ess=0.0, kl=0.1, kl_drawn=0.9)] + [
            _round(r + 2, weight_ess=value, kl=0.2, kl_drawn=0.3) for r, value in enumerate(ess)
        ]
        return {"name": "a", "seed": seed, "config": {"warmup_rounds": 1}, "history": history}

    runs = [run(0, [0.9, 0.7]), run(1, [0.5, 0.5]), run(2, [1.0, 0.9])]
    other = {"name": "b", "seed": 0, "config": {}, "history": []}
    table = diagnostics_table([*runs, other], ["a"])
    row = next(line for line in table.splitlines() if line.startswith("| a |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    # Rounds after the warm-up only: KL 0.2, ESS means 0.8, 0.5, 0.95, median 0.8; KL
    # ratio 1.5.
    assert cells[1] == "3"
    assert cells[2:] == ["–", "–", "–", "–", "–", "0.200", "0.800", "1.500"]
    assert diagnostics_table(runs, ["absent"]) == ""


def test_a_study_without_fast2_takes_its_target_and_ratios_from_given_runs():
    machine = {"cpu": "x", "cores": 2, "python": "3", "torch": "2", "torch_threads": 2}

    def run(name: str, seed: int, accuracies: list[float]) -> dict:
        history = [_round(r + 1) | {"accuracy": a} for r, a in enumerate(accuracies)]
        for record in history:
            record.update(images_synthesized=0, kd_steps=0, synthesis_seconds=1.0, kd_seconds=2.0)
        return {"name": name, "seed": seed, "config": {}, "machine": machine, "history": history}

    ssd = [run("ssd-kd", 0, [0.7, 0.85, 0.86])]
    fast2 = [run("fast-2", 0, [0.5, 0.8, 0.84, 0.84]), run("fast-2", 1, [0.82])]
    alone = summarize(ssd, 0.9, 10)
    assert "fast-2" not in alone["targets"]
    summary = summarize(ssd, 0.9, 10, fast2)
    assert summary["targets"]["fast-2"] == pytest.approx(0.83)  # median of 0.84, 0.82
    assert summary["methods"]["ssd-kd"]["time_to_fast-2_median"] == 20.0
    assert "fast-2" not in summary["methods"]  # the reference is not a row of the study
    # SSD-KD's 20 s to 83% over the same seed's Fast-2 overall 40 s.
    assert summary["paired_time_ratio"] == {"median": 0.5, "seeds": 1}
    # A study's own Fast-2 runs win over the given ones.
    own = summarize([*ssd, run("fast-2", 0, [0.86])], 0.9, 10, fast2)
    assert own["targets"]["fast-2"] == pytest.approx(0.86)


def test_every_plotted_run_has_its_own_colour_and_line_style():
    """Regression: the main plot's eleventh run (real-data) took the first run's colour
    (ssd-kd's), so the two lines could not be told apart."""
    styles = line_styles(12)
    assert len(set(styles)) == 12
    assert styles[0] == ("C0", "-")
    assert styles[10] == ("C0", "--")
    with pytest.raises(ValueError, match="Expected at most 40 runs, got 41"):
        line_styles(41)

"""Keep the benchmark scripts from rotting.

Each script runs once with ``--quick`` on a tiny budget; every output goes to ``tmp_path``
so the docs are never rewritten by the tests. The efficiency runs use a random-weight
digits teacher written here (training one would dominate the test's time); accuracy is
not what these tests check.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from ssdkd.data import load_dataset
from ssdkd.engine.teacher import save_teacher
from ssdkd.models import create_model

ROOT = Path(__file__).resolve().parents[2]
ROUND_KEYS = {
    "round",
    "images_synthesized",
    "kd_steps",
    "synthesis_seconds",
    "kd_seconds",
    "overall_seconds",
    "accuracy",
}


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args, "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
        check=False,
    )


def _benchmark(name: str) -> Any:
    """The module ``benchmarks/NAME.py``, imported as the benchmarks import each other."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def _quick_args(teacher: Path, results: Path, figures: Path, markdown: Path) -> list[str]:
    """efficiency.py's arguments for a quick digits run writing into the given places."""
    return [
        *("--dataset", "digits", "--teacher", str(teacher), "--quick"),
        *("--results", str(results), "--figures", str(figures), "--markdown", str(markdown)),
    ]


@pytest.fixture(scope="module")
def digits_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = create_model("small_cnn", num_classes=10, in_channels=1, image_size=8)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    save_teacher(
        path,
        model.eval(),
        model_name="small_cnn",
        dataset=data,
        accuracy=0.0,
        in_channels=1,
        image_size=8,
    )
    return path


@pytest.mark.slow
def test_efficiency_quick_studies_write_one_file_per_run_and_resume(
    tmp_path: Path, digits_teacher: Path
) -> None:
    results, figures, markdown = tmp_path / "runs", tmp_path / "figures", tmp_path / "bench.md"
    markdown.write_text("# Benchmarks\n\nexisting section\n")
    args = _quick_args(digits_teacher, results, figures, markdown)
    args += ["--study", "main", "ablation", "buffer"]
    result = _run("efficiency.py", *args)
    assert result.returncode == 0, result.stderr
    files = sorted(path.name for path in results.glob("*_seed0.json"))
    expected = {"ssd-kd", "fast-2", "fast-5", "deepinversion", "noise-control", "real-data"}
    expected |= {"no-diversity", "no-difficulty", "no-priority", "no-phi"}
    names = {name.removesuffix("_seed0.json") for name in files}
    assert expected <= names
    assert any(name.startswith("buffer-") for name in names)
    for path in results.glob("*_seed0.json"):
        run = json.loads(path.read_text())
        assert run["history"], path
        assert set(run["history"][-1]) >= ROUND_KEYS
    for study in ("main", "ablation", "buffer"):
        assert (figures / f"efficiency_{study}_digits.png").stat().st_size > 0
    text = markdown.read_text()
    assert "existing section" in text
    assert "<!-- efficiency-main-digits begin -->" in text
    assert "<!-- efficiency-buffer-digits begin -->" in text
    assert "--dataset digits --study main" in text  # each section gives its command
    # A rerun finds every run file up to date and runs nothing.
    stamps = {path: path.stat().st_mtime_ns for path in results.glob("*_seed0.json")}
    again = _run("efficiency.py", *args)
    assert again.returncode == 0, again.stderr
    assert {path: path.stat().st_mtime_ns for path in stamps} == stamps
    # A run recorded before a config field existed counts at the field's default (the Fast-2
    # runs of the Fashion-MNIST study were once all dropped when synthesis_share was added).
    older = results / "fast-2_seed0.json"
    run = json.loads(older.read_text())
    del run["config"]["synthesis_share"]
    older.write_text(json.dumps(run))

    def outdate(path: Path) -> None:
        """Make ``path`` a run file from another teacher: outdated."""
        run = json.loads(path.read_text())
        run["teacher_fingerprint"] = "another teacher"
        path.write_text(json.dumps(run))

    def redrawn(study: str) -> str:
        """``study``'s section after a --report-only redraw."""
        report = _run("efficiency.py", *args, "--report-only")
        assert report.returncode == 0, report.stderr
        begin = f"<!-- efficiency-{study}-digits begin -->"
        return markdown.read_text().split(begin)[1].split("end -->")[0]

    # A run file from another teacher is outdated: not counted, and named as such.
    outdate(results / "fast-5_seed0.json")
    main = redrawn("main")
    assert "1 outdated file(s) not counted" in main
    assert "| fast-5 |" not in main
    assert "| fast-2 |" in main
    # A study left with no current run (a preset changed under it) says so in its section
    # instead of keeping the tables of its outdated runs, and its plot goes.
    for path in results.glob("*_seed0.json"):
        if not path.name.startswith(("deepinversion", "fast-2", "fast-5")):
            outdate(path)
    ablation = redrawn("ablation")
    assert ablation.startswith("\nNo current runs: the 5 run file(s) of this study in")
    assert "--dataset digits --study ablation" in ablation
    assert "| no-phi |" not in ablation
    assert not (figures / "efficiency_ablation_digits.png").exists()
    assert (figures / "efficiency_main_digits.png").exists()


def test_a_study_counts_its_planned_runs_not_the_files_of_a_study_sharing_them() -> None:
    """Regression: the three-seed ablation study read "partial: 5 of 15 runs" (and
    "complete" once it had 15 files) when five of its files were the main study's
    five SSD-KD seeds and the other arms had none."""
    efficiency = _benchmark("efficiency")
    planned = [("ssd-kd", None, [0, 1, 2]), ("no-phi", None, [0, 1, 2])]
    done = [{"name": "ssd-kd", "seed": seed} for seed in range(5)]
    assert efficiency.study_status(done, planned) == "**partial: 3 of 6 runs**"
    done += [{"name": "no-phi", "seed": seed} for seed in range(3)]
    assert efficiency.study_status(done, planned) == "complete"
    assert efficiency.seed_range([0]) == "seed 0"
    assert efficiency.seed_range([3, 0, 4]) == "seeds 0–4"


def test_nayer_speed_section_says_when_no_fast2_run_pairs(tmp_path: Path) -> None:
    """Regression: when Fast-2's preset changed, the Fast-2 runs repeated on NAYER's machine
    stopped counting and the results page kept the earlier pairs' section as if current."""
    results_page = _benchmark("results_page")
    efficiency = _benchmark("efficiency")
    from ssdkd.methods import config_to_dict

    presets = efficiency._presets("fashion-mnist")
    header = {"teacher_fingerprint": "t", "train_size": 60000, "quick": False}
    machine = {"cpu": "intel", "cores": 2, "python": "3.11", "torch": "2", "torch_threads": 2}

    def write(directory: Path, name: str, config: Any, curve: list[tuple[float, float]]) -> None:
        directory.mkdir(exist_ok=True)
        (directory / "study.json").write_text(json.dumps(header))
        history = [{"overall_seconds": t, "accuracy": a} for t, a in curve]
        run = {"name": name, "seed": 0, "config": config_to_dict(config), "history": history}
        run |= {"teacher_fingerprint": "t", "machine": machine, "finished": "2026-12-06"}
        (directory / f"{name}_seed0.json").write_text(json.dumps(run))

    study, same = tmp_path / "study", tmp_path / "same"
    write(study, "nayer", presets["nayer"], [(50.0, 0.80), (100.0, 0.86)])
    earlier = dataclasses.replace(presets["fast-2"], synthesis_batch_size=64)
    write(same, "fast-2", earlier, [(100.0, 0.80), (400.0, 0.85)])
    section = results_page.speed_section(study, same)
    assert section.startswith("No current pair:")
    assert "--runs fast-2 --seeds SEED --results" in section
    write(same, "fast-2", presets["fast-2"], [(100.0, 0.80), (400.0, 0.85)])
    assert "| 0 | intel | 85.00 | 400 | 100 | 4.00× |" in results_page.speed_section(study, same)


@pytest.mark.slow
def test_efficiency_runs_filter_runs_only_the_named_runs(
    tmp_path: Path, digits_teacher: Path
) -> None:
    results = tmp_path / "runs"
    args = _quick_args(digits_teacher, results, tmp_path / "figures", tmp_path / "bench.md")
    args += ["--study", "main"]
    result = _run("efficiency.py", *args, "--runs", "ssd-kd", "noise-control")
    assert result.returncode == 0, result.stderr
    files = sorted(path.name for path in results.glob("*_seed*.json"))
    assert files == ["noise-control_seed0.json", "ssd-kd_seed0.json"]
    wrong = _run("efficiency.py", *args, "--runs", "fast-7")
    assert wrong.returncode != 0
    assert "--runs: ['fast-7'] not in the chosen studies' runs" in wrong.stderr


def test_studies_share_one_directory_where_a_name_means_one_config() -> None:
    """Regression: the regimes study kept its runs in a directory of its own, so the runs it
    plans with another study (the 1% buffer with figure1 and buffer; no-phi, no-priority
    and full SSD-KD with ablation) were made twice."""
    efficiency = _benchmark("efficiency")
    from ssdkd.methods import config_to_dict

    for dataset, train_size in (("fashion-mnist", 60000), ("digits", 1797)):
        configs: dict[str, list[Any]] = {}
        for study in efficiency.STUDIES:
            for name, config, _ in efficiency.study_runs(dataset, study, train_size):
                configs.setdefault(name, []).append(config_to_dict(config))
        for name, recorded in configs.items():
            assert all(config == recorded[0] for config in recorded), (dataset, name)
    planned = {
        study: {name for name, _, _ in efficiency.study_runs("fashion-mnist", study, 60000)}
        for study in ("regimes", "figure1", "ablation")
    }
    assert "buffer-600" in planned["regimes"] & planned["figure1"]
    assert {"ssd-kd", "no-phi", "no-priority"} <= planned["regimes"] & planned["ablation"]
    for studies in (["regimes"], ["main", "regimes", "figure1"]):
        args = efficiency.parse_args(["--dataset", "fashion-mnist", "--study", *studies])
        assert Path(args.results).name == "efficiency_fashion-mnist"


def test_sampling_quick_run_writes_rows_and_the_results_section(tmp_path: Path) -> None:
    out, markdown = tmp_path / "s.json", tmp_path / "results.md"
    result = subprocess.run(
        [
            *(sys.executable, str(ROOT / "benchmarks" / "sampling.py"), "--quick"),
            *("--out", str(out), "--markdown", str(markdown)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())["rows"]
    names = {row["implementation"] for row in rows}
    assert {"PriorityBuffer", "flat + torch.multinomial"} <= names
    assert all(len(row["us"]) == 4 and min(row["us"]) > 0 for row in rows)
    section = markdown.read_text()
    assert section.startswith("<!-- sampling begin -->")
    assert "| 1,000 | 64 |" in section


@pytest.mark.slow
def test_overhead_quick_run_writes_ratios(tmp_path: Path) -> None:
    out, markdown = tmp_path / "o.json", tmp_path / "bench.md"
    result = _run("overhead.py", "--quick", "--out", str(out), "--markdown", str(markdown))
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert [row["teacher"] for row in data["pairs"]] == ["small_cnn", "resnet34"]
    for row in data["pairs"]:
        assert row["ratio_median"] > 0
        assert row["bare_ms_median"] > 0
        assert row["guarded_ratio_median"] > 0
    assert "guarded / bare median" in markdown.read_text()


@pytest.mark.slow
def test_gpu_check_runs_on_cpu_and_writes_every_part(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    result = _run("gpu.py", "--device", "cpu", "--quick", "--out", str(out))
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    for part in ("kd_step", "synthesis_step"):
        assert set(data[part]) == {"fp32", "bf16"}
        for row in data[part].values():
            assert row["ssdkd_ms_median"] > 0
            assert row["bare_ms_median"] > 0
    assert [row["size"] for row in data["buffer"]] == [1000]
    assert data["buffer"][0]["sync_free"] is None  # only checked on CUDA
    assert "pytest_cuda" not in data


@pytest.mark.slow
def test_calibration_probe_writes_its_record_and_skips_a_finished_probe(
    tmp_path: Path, digits_teacher: Path
) -> None:
    args = ["probe", "ssd-kd", "--preset", "digits", "--dataset", "digits"]
    args += ["--teacher", str(digits_teacher), "--results", str(tmp_path), "--every", "1"]
    args += ["rounds=3", "warmup_rounds=1", "kd_steps=2"]
    result = _run("calibration.py", *args)
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "probe.json").read_text())
    assert record["settings"] == ["rounds=3", "warmup_rounds=1", "kd_steps=2"]
    last = record["records"][-1]
    assert {"val_accuracy", "val_top_class_share", "newest_teacher_classes", "kl"} <= set(last)
    assert 0.0 <= last["newest_diversity"] <= 2.0
    assert 0.0 < record["real_diversity"] <= 2.0
    assert set(last["final_bn_reestimated"]) == {"buffer", "real"}
    assert 0.0 <= last["final_bn_reestimated"]["buffer"] <= 1.0
    assert last["final_bn_reestimated"]["real"] is None  # digits: no image outside validation
    again = _run("calibration.py", *args)
    assert again.returncode == 0
    assert "skipped" in again.stdout


@pytest.mark.slow
def test_student_lr_sweep_quick_run_writes_rows(tmp_path: Path, digits_teacher: Path) -> None:
    out = tmp_path / "lr.json"
    args = ["--teacher", str(digits_teacher), "--dataset", "digits", "--preset", "digits"]
    result = _run("student_lr.py", *args, "--quick", "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 2
    for row in rows:
        assert 0.0 <= row["pool_agreement"] <= 1.0
        assert 0.0 <= row["val_accuracy"] <= 1.0


@pytest.mark.slow
def test_distributed_throughput_compares_one_and_two_processes(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["--presets", "digits", "--methods", "ssd-kd", "--rounds", "1", "--cores", "2"]
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "distributed.py"), *args,
         "--results", str(tmp_path), "--doc", str(tmp_path / "doc.md")],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads((tmp_path / "distributed_tiny_cnn.json").read_text())["rows"]
    assert [(r["processes"], r["threads_per_process"]) for r in rows] == [(1, 2), (2, 1)]
    for row in rows:
        assert row["rounds_measured"] == 1
        assert row["round_seconds"] > 0
        assert 0 <= row["kd_collective_share"] < 1
    # One process runs no collective; two average every KD step's gradients.
    assert rows[0]["kd_collective_share"] == 0
    assert rows[1]["kd_collective_share"] > 0
    assert "| digits | ssd-kd | 2 × 1 |" in (tmp_path / "doc.md").read_text()


@pytest.mark.slow
def test_equivalence_compares_final_students_of_two_runs(tmp_path: Path) -> None:
    """Two quick runs of the same code give bit-identical final students (one thread), and
    the comparison is written as a markdown section."""
    first, second, page = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "page.md"
    methods = ["--methods", "fast-dfkd", "noise-control", "--quick"]
    assert _run("equivalence.py", "--out", str(first), *methods).returncode == 0
    result = _run(
        "equivalence.py", "--out", str(second), "--against", str(first), "--markdown",
        str(page), *methods,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "fast-dfkd: identical final student" in result.stdout
    assert page.read_text().count("| yes |") == 2


def test_every_paired_arm_is_a_run_of_its_study_differing_in_the_studied_switch_only():
    """The paired studies' plans (benchmarks/efficiency.py): each pair names two runs of
    the study, and on Fashion-MNIST's sizes their configs differ only where the question
    says."""
    efficiency = _benchmark("efficiency")
    from ssdkd.methods import config_to_dict

    expected = {
        "the preset's z-only generator: φ on vs off": {"use_phi"},
        "z-only generator (the preset) vs class-conditional (φ on)": {"conditional_generator"},
        "harder synthesis: φ on vs off": {"use_phi"},
        "harder synthesis vs the preset (φ on)": set(efficiency.HARDER_SYNTHESIS),
        "1% buffer: priority vs uniform draws": {"priority_sampling"},
        "2% buffer: priority vs uniform draws": {"priority_sampling"},
        "priority δ = w·KL (paper) vs uniform": {"priority_sampling"},
        "priority δ = KL vs uniform": {"priority_sampling", "priority_form"},
        "priority δ = KL vs w·KL": {"priority_form"},
        "KD on stored teacher logits (no augmentation) vs the preset": {"kd_augment"},
        "Fast-2's 90 KD steps per round vs the preset's 60": {"kd_steps"},
    }
    for study in ("regimes", "figure1"):
        runs = efficiency.study_runs("fashion-mnist", study, 60000)
        configs = {name: config_to_dict(config) for name, config, _ in runs}
        assert len(configs) == len(runs)  # names unique
        assert all(len(seeds) == (5 if study == "regimes" else 3) for _, _, seeds in runs)
        pairs = efficiency.study_pairs("fashion-mnist", study, 60000)
        assert len(pairs) == (11 if study == "regimes" else 3)
        for question, a, b in pairs:
            if study == "regimes":
                differ = {k for k in configs[a] if configs[a][k] != configs[b][k]}
                assert differ == expected[question], question
            else:
                # The same student budget on N synthetic against N real images.
                size = configs[a]["buffer_size"]
                assert configs[b]["train_images"] == size
                assert configs[b]["target"] == "teacher"
                for key in ("kd_steps", "kd_batch_size", "temperature", "student_lr"):
                    assert configs[a][key] == configs[b][key], key
                steps = configs[a]["rounds"] - configs[a]["warmup_rounds"]
                assert configs[b]["rounds"] == steps
    # The harder synthesis is the SSD-KD preset with HARDER_SYNTHESIS's switches only.
    runs = {
        name: config_to_dict(config)
        for name, config, _ in efficiency.study_runs("fashion-mnist", "regimes", 60000)
    }
    preset = config_to_dict(efficiency._presets("fashion-mnist")["ssd-kd"])
    differ = {k for k in preset if preset[k] != runs["harder"][k]}
    assert differ == set(efficiency.HARDER_SYNTHESIS)
    sizes = [a for _, a, _ in efficiency.study_pairs("fashion-mnist", "figure1", 60000)]
    assert sizes == ["buffer-600", "buffer-3000", "buffer-6000"]
    # NAYER's studies: one switch each (the embeddings, then the rounds with them).
    for study, switch in (("embeddings", "embeddings_file"), ("schedule", "rounds")):
        runs = efficiency.study_runs("fashion-mnist", study, 60000)
        configs = {name: config_to_dict(config) for name, config, _ in runs}
        ((_, a, b),) = efficiency.study_pairs("fashion-mnist", study, 60000)
        assert {k for k in configs[a] if configs[a][k] != configs[b][k]} == {switch}, study
    (_, short, _), (_, long, _) = efficiency.study_runs("fashion-mnist", "schedule", 60000)
    assert long.rounds - long.warmup_rounds == 2 * (short.rounds - short.warmup_rounds)


def test_each_plugin_arm_differs_from_its_method_in_the_plugged_part_only(monkeypatch) -> None:
    """The plugins study (benchmarks/efficiency.py) pairs a generator-family method, or one
    of its arms, with itself plus one of SSD-KD's parts: the arms differ in that switch only
    (the transfer set at the SSD-KD preset's size), and a method without the dataset's
    preset plans no run and no pair."""
    efficiency = _benchmark("efficiency")
    from ssdkd.methods import PRESETS, config_to_dict

    presets = efficiency._presets("fashion-mnist")
    monkeypatch.setattr(efficiency, "_presets", lambda dataset: presets)
    presets.pop("dafl", None)
    presets.pop("dfad", None)
    assert efficiency.study_runs("fashion-mnist", "plugins", 60000) == []
    assert efficiency.study_pairs("fashion-mnist", "plugins", 60000) == []
    presets |= {"dafl": PRESETS["dafl"]["mnist"], "dfad": PRESETS["dfad"]["mnist"]}
    runs = efficiency.study_runs("fashion-mnist", "plugins", 60000)
    configs = {name: config_to_dict(config) for name, config, _ in runs}
    assert sorted(configs) == [
        "dafl",
        "dafl-buffer",
        "dafl-buffer-uniform",
        "dafl-phi",
        "dfad",
        "dfad-buffer",
        "dfad-buffer-reservoir",
    ]
    assert len(configs) == len(runs)  # each arm planned once
    assert all(seeds == [0, 1, 2] for _, _, seeds in runs)
    expected = {
        "dafl-phi": {"phi_weight"},
        "dafl-buffer": {"transfer", "buffer_size"},
        "dafl-buffer-uniform": {"priority_sampling"},
        "dfad-buffer": {"transfer", "buffer_size"},
        "dfad-buffer-reservoir": {"refresh_policy"},
    }
    pairs = efficiency.study_pairs("fashion-mnist", "plugins", 60000)
    assert [(a, b) for _, a, b in pairs] == [
        ("dafl-phi", "dafl"),
        ("dafl-buffer", "dafl"),
        ("dafl-buffer-uniform", "dafl-buffer"),
        ("dfad-buffer", "dfad"),
        ("dfad-buffer-reservoir", "dfad-buffer"),
    ]
    for _, a, b in pairs:
        assert {k for k in configs[a] if configs[a][k] != configs[b][k]} == expected[a]
        if "buffer" in a:
            assert configs[a]["buffer_size"] == presets["ssd-kd"].buffer_size
            assert configs[a]["kd_steps"] == configs[b]["kd_steps"]


@pytest.mark.slow
def test_efficiency_figure1_runs_the_real_images_arm_on_a_subset(
    tmp_path: Path, digits_teacher: Path
) -> None:
    results = tmp_path / "runs"
    args = _quick_args(digits_teacher, results, tmp_path / "figures", tmp_path / "bench.md")
    args += ["--study", "figure1"]
    result = _run("efficiency.py", *args)
    assert result.returncode == 0, result.stderr
    [real] = [json.loads(path.read_text()) for path in results.glob("real-kd-*_seed0.json")]
    size = real["config"]["train_images"]
    assert real["train_images"] == size == real["config"]["train_images"]
    assert real["validation_accuracy"] is None  # it may have trained on them
    text = (tmp_path / "bench.md").read_text()
    assert f"| N = {size} (1%): synthetic vs real | buffer-{size} | real-kd-{size} | 1 |" in text


def test_mnist_benchmark_writes_the_wheels_pickle_as_idx_files_ssdkd_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """benchmarks/mnist_lenet.py: the pickle's pixels v/256 come back as v/255 floats, its
    training and validation images form the training split in their order."""
    import gzip
    import pickle

    import numpy as np

    mnist_lenet = _benchmark("mnist_lenet")
    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        pixels = rng.integers(0, 256, (n, 784)).astype(np.float32) / 256.0
        return pixels, rng.integers(0, 10, n)

    splits = (split(6), split(4), split(5))
    fake = tmp_path / "mnist.pkl.gz"
    with gzip.open(fake, "wb") as handle:
        pickle.dump(splits, handle)
    monkeypatch.setattr(mnist_lenet, "mnist_pickle", lambda: fake)
    mnist_lenet.write_idx_files(tmp_path / "idx")
    data = load_dataset("mnist", tmp_path / "idx")
    train_pixels = np.concatenate([splits[0][0], splits[1][0]]) * 256.0 / 255.0
    assert np.allclose(data.x_train.flatten(1).numpy(), train_pixels, atol=1e-6)
    assert data.y_train.tolist() == [*splits[0][1], *splits[1][1]]
    assert data.y_test.tolist() == list(splits[2][1])
    assert data.x_test.shape == (5, 1, 28, 28)


def test_mnist_estimate_times_two_iterations_and_projects_the_preset() -> None:
    """benchmarks/mnist_lenet.py --estimate: the projection is the timed seconds per
    iteration times the preset's iterations and the seeds (timed here with a small batch
    and generator through ``--set``)."""
    mnist_lenet = _benchmark("mnist_lenet")
    from ssdkd.methods import PRESETS

    small = ["synthesis_batch_size=8", "kd_batch_size=8", "generator_width=8"]
    args = mnist_lenet.parse_args(["--methods", "dfad", "--seeds", "0", "1", "--set", *small])
    [row] = mnist_lenet.estimate(args)
    preset = PRESETS["dfad"]["mnist"]
    assert row["method"] == "dfad"
    assert row["seconds_per_iteration"] > 0
    expected = row["seconds_per_iteration"] * preset.rounds * preset.iterations * 2 / 3600
    assert row["hours"] == pytest.approx(expected)

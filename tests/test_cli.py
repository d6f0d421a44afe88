"""The ``ssdkd`` command: demo, distill, plot; usage errors and expected errors."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from ssdkd.cli import main
from ssdkd.data import load_dataset
from ssdkd.engine.teacher import save_teacher
from ssdkd.models import create_model


@pytest.mark.slow
def test_demo_with_a_reduced_budget_prints_the_table_and_writes_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    argv = [
        "demo",
        "--out",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--rounds",
        "3",
        "--no-progress",
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    for row in (
        "teacher accuracy",
        "final-round student accuracy, SSD-KD",
        "final-round student accuracy, noise control",
        "synthetic images generated",
        "KD steps",
        "total time",
    ):
        assert row in text
    assert "(trained)" in text
    for name in (
        "accuracy.png",
        "ssd-kd/samples.png",
        "ssd-kd/diagnostics.png",
        "ssd-kd/buffer_histograms.png",
        "ssd-kd/metrics.jsonl",
        "noise-control/metrics.jsonl",
    ):
        assert (out / name).is_file(), name
    # The second run reuses the cached teacher.
    assert main(argv) == 0
    assert "(cached)" in capsys.readouterr().out


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained small_cnn saved as a digits teacher: enough to drive the CLI."""
    torch.manual_seed(0)
    model = create_model("small_cnn", num_classes=10, in_channels=1, image_size=8)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    save_teacher(
        path,
        model,
        model_name="small_cnn",
        dataset=load_dataset("digits"),
        accuracy=0.1,
        in_channels=1,
        image_size=8,
    )
    return path


def _distill_args(teacher: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        "distill",
        "--method",
        "ssd-kd",
        "--teacher",
        str(teacher),
        "--student",
        "tiny_cnn",
        "--dataset",
        "digits",
        "--preset",
        "digits",
        "--rounds",
        "2",
        "--set",
        "warmup_rounds=1",
        "--set",
        "kd_steps=2",
        "--run-dir",
        str(run_dir),
        "--no-progress",
        *extra,
    ]


def test_distill_resume_and_plot_from_the_command_line(
    tmp_path: Path, teacher_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    assert main(_distill_args(teacher_file, run_dir)) == 0
    out = capsys.readouterr().out
    final = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])["accuracy"]
    assert f"final-round held-out accuracy {final:.2%}" in out
    assert "best" not in out
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["kd_steps"], config["warmup_rounds"], config["rounds"]) == (2, 1, 2)
    assert main(_distill_args(teacher_file, run_dir, "--resume")) == 0
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2
    # Without --resume the finished run is refused, not replaced (it was, silently).
    kept = (run_dir / "metrics.jsonl").read_bytes()
    capsys.readouterr()
    assert main(_distill_args(teacher_file, run_dir)) == 1
    err = capsys.readouterr().err
    assert "already holds a run (SSDKD, 2 of 2 rounds logged)" in err
    assert "--resume" in err
    assert "--overwrite" in err
    assert len(err.strip().splitlines()) == 1
    assert (run_dir / "metrics.jsonl").read_bytes() == kept
    (run_dir / "samples.png").unlink()
    assert main(["plot", str(run_dir)]) == 0
    assert (run_dir / "samples.png").is_file()
    printed = capsys.readouterr().out
    assert "samples.png" in printed
    assert "diagnostics.png" in printed


def test_the_real_data_bound_runs_from_the_command_line_on_the_training_split(
    tmp_path: Path, teacher_file: Path
) -> None:
    argv = _distill_args(teacher_file, tmp_path / "run", "--set", "kd_batch_size=16")
    argv[argv.index("--method") + 1] = "real-data"
    assert main(argv) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["method"], config["config_class"]) == ("RealData", "RealDataConfig")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [r["kd_steps"] for r in records] == [0, 2]
    assert records[-1]["accuracy"] is not None


@pytest.mark.parametrize(
    ("method", "preset", "expected"),
    [
        ("ssd-kd", "fashion-mnist", {"buffer_size": 16, "refresh_policy": "reservoir"}),
        ("fast-dfkd", "fashion-mnist", {"g_steps": 2, "adv_weight": 15.0}),
        ("fast-dfkd", "fast-5-fashion-mnist", {"g_steps": 5, "adv_weight": 15.0}),
        ("deepinversion", "fashion-mnist", {"iterations": 3, "student_lr": 0.01}),
    ],
)
def test_each_fashion_mnist_preset_runs_from_the_command_line(
    tmp_path: Path, teacher_file: Path, method: str, preset: str, expected: dict[str, object]
) -> None:
    """`--preset fashion-mnist` (and Fast-5's) reaches each method through `ssdkd distill`:
    the run's config.json holds the preset's fields with the `--set` budget on top."""
    budget = ["kd_batch_size=16", "synthesis_batch_size=16"]
    # SSD-KD's preset synthesises in 60% of the rounds: of 2 rounds, only the warm-up one.
    extra = {"ssd-kd": ["buffer_size=16", "synthesis_share=1.0"], "deepinversion": ["iterations=3"]}
    budget += extra.get(method, [])
    argv = _distill_args(teacher_file, tmp_path / "run", *(f"--set={item}" for item in budget))
    argv[argv.index("--method") + 1] = method
    argv[argv.index("--preset") + 1] = preset
    assert main(argv) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert {key: config[key] for key in expected} == expected
    assert config["temperature"] == 4.0
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["distill"],
        [
            "distill",
            "--method",
            "magic",
            "--teacher",
            "t.pt",
            "--student",
            "tiny_cnn",
            "--dataset",
            "digits",
            "--run-dir",
            "r",
        ],
        [
            "distill",
            "--method",
            "ssd-kd",
            "--teacher",
            "t.pt",
            "--student",
            "nope",
            "--dataset",
            "digits",
            "--run-dir",
            "r",
        ],
        ["demo", "--rounds", "zero"],
        ["plot"],
        ["unknown-command"],
    ],
)
def test_bad_arguments_give_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "usage:" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "bufer_size=3"], "Unknown field 'bufer_size'"),
        (["--set", "buffer_size=-1"], "buffer_size"),
        (["--set", "student_lr=nan"], "`student_lr` of SSDKDConfig to be a finite number"),
        (["--preset", "fast-5"], "--preset for ssd-kd"),
        # Regression: a budget shrunk below the warm-up, or a synthesis window ending
        # inside it (the adversarial phase never ran), started without a word.
        (["--set", "warmup_rounds=2"], "raise `rounds` or lower the config's `warmup_rounds`"),
        (
            ["--set", "synthesis_share=0.5"],
            "round(synthesis_share · rounds) = 1 (rounds 2, synthesis_share 0.5): synthesis "
            "would stop before the warm-up ends",
        ),
    ],
)
def test_bad_settings_are_a_one_line_error(
    tmp_path: Path,
    teacher_file: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    assert main(_distill_args(teacher_file, tmp_path / "run", *extra)) == 1
    err = capsys.readouterr().err
    assert err.startswith("ssdkd: error:")
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_a_missing_teacher_file_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_distill_args(tmp_path / "missing.pt", tmp_path / "run")) == 1
    assert "missing.pt" in capsys.readouterr().err


def test_plot_of_a_directory_without_metrics_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plot", str(tmp_path)]) == 1
    assert "metrics.jsonl" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["demo", "distill", "plot"])
def test_help_lists_every_option_with_its_default(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: [])" not in text  # regression: --set showed its empty list
    expected = {
        "demo": ["--out DIR", "(default: ssdkd-demo)", "--cache-dir", "--rounds", "--seed"],
        "distill": [
            "--method",
            "--teacher",
            "--student",
            "--dataset",
            "--data-dir",
            "--preset",
            "made for the teacher's input size",
            "--rounds",
            "--set",
            "--run-dir",
            "--resume",
            "--precision",
            "(default: fp32)",
            "--device",
            "--seed",
        ],
        "plot": ["RUN_DIR"],
    }[command]
    for item in expected:
        assert item in text, item


@pytest.mark.parametrize("progress", [True, False])
def test_a_collapse_warning_is_shown_once_on_the_command_line(progress: bool) -> None:
    """With a progress display the run prints the sentence itself; Python's copy is off."""
    from ssdkd.cli.distill import _collapse_warnings_shown_once
    from ssdkd.engine import CollapseWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with _collapse_warnings_shown_once(progress=progress):
            warnings.warn("collapsed", CollapseWarning, stacklevel=1)
            warnings.warn("other", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == (["other"] if progress else ["collapsed", "other"])


def test_debug_shows_the_traceback_of_an_expected_error(tmp_path: Path, teacher_file: Path) -> None:
    """``--debug`` (and ``SSDKD_DEBUG=1``) re-raise what is otherwise one line."""
    args = _distill_args(teacher_file, tmp_path / "run", "--set", "bufer_size=3")
    with pytest.raises(ValueError, match="Unknown field 'bufer_size'"):
        main(["--debug", *args])


def test_the_debug_environment_variable_shows_the_traceback(
    tmp_path: Path, teacher_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSDKD_DEBUG", "1")
    with pytest.raises(ValueError, match="bufer_size"):
        main(_distill_args(teacher_file, tmp_path / "run", "--set", "bufer_size=3"))
    monkeypatch.setenv("SSDKD_DEBUG", "0")
    assert main(_distill_args(teacher_file, tmp_path / "run", "--set", "bufer_size=3")) == 1


def test_a_bug_is_not_reduced_to_one_line(
    tmp_path: Path, teacher_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prevents hiding bugs: every ``ValueError`` used to become one line, also one raised
    deep inside torch or numpy, and its traceback was lost."""
    import ssdkd.engine.distill

    def broken(*args: object, **kwargs: object) -> None:
        int("not a number")  # a ValueError raised outside ssdkd's argument checks

    def crashing(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(ssdkd.engine.distill, "run_rounds", crashing)
    with pytest.raises(RuntimeError, match="a bug"):
        main(_distill_args(teacher_file, tmp_path / "a"))
    monkeypatch.setattr(ssdkd.engine.distill, "run_rounds", broken)
    with pytest.raises(ValueError, match="invalid literal"):
        main(_distill_args(teacher_file, tmp_path / "b"))


def test_python_dash_m_ssdkd_is_the_command() -> None:
    """Regression guard: `torchrun -m ssdkd distill ...` needs `python -m ssdkd` to work."""
    result = subprocess.run(
        [sys.executable, "-m", "ssdkd", "distill", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Under torchrun" in result.stdout


def test_without_a_preset_the_one_made_for_the_teachers_input_is_used(
    tmp_path: Path, teacher_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: without --preset the CIFAR `paper` preset ran on a 28×28 teacher
    (220 rounds × 400 KD steps at T 20), and the student collapsed."""
    argv = _distill_args(teacher_file, tmp_path / "run")
    del argv[argv.index("--preset") : argv.index("--preset") + 2]
    assert main(argv) == 0
    assert "--preset digits (made for the teacher's 1x8x8 images)" in capsys.readouterr().err
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["temperature"], config["student_lr"]) == (4.0, 0.05)  # the digits budget


def test_a_method_without_a_preset_for_the_teachers_input_asks_for_one(
    tmp_path: Path, teacher_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _distill_args(teacher_file, tmp_path / "run")
    del argv[argv.index("--preset") : argv.index("--preset") + 2]
    argv[argv.index("--method") + 1] = "dfq"
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert (
        "no preset of dfq was made for the teacher's 1x8x8 images (presets: paper (3x32x32), "
        "fashion-mnist (1x28x28))" in err
    )


def test_a_preset_for_another_input_size_is_named_before_the_run(
    tmp_path: Path, teacher_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """The run goes ahead, with a note now and the same sentence in a collapse warning."""
    import ssdkd.engine.distill

    seen: dict[str, object] = {}

    def record(*args: object, **kwargs: object) -> None:
        seen.update(kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(ssdkd.engine.distill, "run_rounds", record)
    argv = _distill_args(teacher_file, tmp_path / "run")
    argv[argv.index("--preset") + 1] = "paper"
    main(argv)
    note = (
        "The preset 'paper' was made for 3x32x32 images, and this teacher takes 1x8x8; "
        "--preset digits was made for them."
    )
    assert f"ssdkd: note: {note}" in capsys.readouterr().err
    assert seen["collapse_hint"] == note


def test_a_run_writes_its_final_student_and_export_makes_a_pt2_of_it(
    tmp_path: Path, teacher_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: the final student was only inside the 34 MB last.pt (under
    ['method']['trainer']['student']), beside best.pt selected on the test data."""
    from ssdkd.engine.blobs import load_with_blobs
    from ssdkd.engine.student_file import load_student

    run = tmp_path / "run"
    assert main(_distill_args(teacher_file, run)) == 0
    student, meta = load_student(run / "student.pt")
    checkpoints = run / "checkpoints"
    last = load_with_blobs(checkpoints / "last.pt", checkpoints / "blobs", kind="run")
    stored = last["method"]["trainer"]["student"]
    assert all(torch.equal(v, stored[k]) for k, v in student.state_dict().items())
    assert (meta["round"], meta["student_model"], meta["image_shape"]) == (2, "tiny_cnn", [1, 8, 8])
    capsys.readouterr()
    assert main(["export", str(run), "--out", str(tmp_path / "student.pt2")]) == 0
    assert "tiny_cnn of round 2, images 1x8x8 normalised with mean" in capsys.readouterr().out
    program = torch.export.load(str(tmp_path / "student.pt2")).module()
    images = torch.rand(5, 1, 8, 8)
    torch.testing.assert_close(program(images), student(images))


def test_export_to_onnx_without_its_packages_is_a_one_line_error(
    tmp_path: Path, teacher_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    if importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxscript"):
        pytest.skip("onnx and onnxscript are installed")
    run = tmp_path / "run"
    assert main(_distill_args(teacher_file, run)) == 0
    capsys.readouterr()
    assert main(["export", str(run), "--out", str(tmp_path / "s.onnx"), "--format", "onnx"]) == 1
    err = capsys.readouterr().err
    assert "for --format onnx (pip install onnx onnxscript), or use --format pt2" in err
    assert len(err.strip().splitlines()) == 1


def test_a_student_file_without_a_known_model_says_how_to_load_it(tmp_path: Path) -> None:
    from ssdkd.engine import CheckpointError
    from ssdkd.engine.student_file import load_student, save_student

    run = {"num_classes": 10, "image_shape": [1, 8, 8], "mean": [0.5], "std": [0.5]}
    save_student(tmp_path / "s.pt", torch.nn.Linear(2, 2), round_number=1, accuracy=None, run=run)
    with pytest.raises(CheckpointError, match="load the file's 'state_dict' into it"):
        load_student(tmp_path / "s.pt")


def test_a_cuda_device_on_a_machine_without_one_is_a_usage_error(
    tmp_path: Path, teacher_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: `--device cuda` on a CPU build ended in a traceback ('Torch not compiled
    with CUDA enabled')."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    assert main(_distill_args(teacher_file, tmp_path / "run", "--device", "cuda")) == 2
    err = capsys.readouterr().err
    assert "no CUDA device is available" in err
    assert "Traceback" not in err


def test_an_interrupted_run_says_how_to_continue_and_resume_of_nothing_says_so(
    tmp_path: Path, teacher_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """Regression: '--resume' on a directory without a run started afresh without a word,
    and 'ssdkd: interrupted' did not mention --resume."""
    import ssdkd.engine.distill

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ssdkd.engine.distill, "run_rounds", interrupted)
    assert main(_distill_args(teacher_file, tmp_path / "new", "--resume")) == 130
    err = capsys.readouterr().err
    assert "holds no checkpoint to resume; starting a new run" in err
    assert "same command and --resume" in err


def test_a_run_resumes_from_its_directory_alone(
    tmp_path: Path, teacher_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """Regression: every flag had to be repeated to resume; the run directory now records
    them (command.json) and `--run-dir DIR --resume` is enough."""
    import ssdkd.engine.distill

    run = tmp_path / "run"
    real = ssdkd.engine.distill.run_rounds
    calls = {"n": 0}

    def crash_first(*args: object, **kwargs: object):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(ssdkd.engine.distill, "run_rounds", crash_first)
    assert main(_distill_args(teacher_file, run, "--seed", "3")) == 130
    command = json.loads((run / "command.json").read_text())
    assert (command["method"], command["seed"], command["preset"]) == ("ssd-kd", 3, "digits")
    assert main(["distill", "--run-dir", str(run), "--resume", "--no-progress"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert (config["seed"], config["rounds"], config["kd_steps"]) == (3, 2, 2)


def test_a_new_run_without_its_required_options_names_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["distill", "--run-dir", str(tmp_path / "run"), "--method", "ssd-kd"]) == 1
    err = capsys.readouterr().err
    assert "Expected --teacher, --student, --dataset for a new run" in err


def test_a_teacher_of_your_own_runs_from_a_state_dict_and_a_builder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """Regression: a researcher's state-dict teacher got "is of kind None, expected
    'teacher'", and --student took only built-in names."""
    (tmp_path / "my_nets.py").write_text(
        "from ssdkd.models import create_model\n\n"
        "def student():\n"
        "    return create_model('tiny_cnn', num_classes=10, in_channels=1, image_size=8)\n"
    )
    monkeypatch.chdir(tmp_path)
    teacher = create_model("small_cnn", num_classes=10, in_channels=1, image_size=8, seed=0)
    torch.save(teacher.state_dict(), tmp_path / "weights.pt")
    argv = _distill_args(tmp_path / "weights.pt", tmp_path / "run")
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "is of kind None" in err
    assert "--teacher-model" in err
    argv[argv.index("--student") + 1] = "my_nets:student"
    argv += ["--teacher-model", "small_cnn", "--mean", "0.3", "--std", "0.4"]
    assert main(argv) == 0
    assert "held-out accuracy" in capsys.readouterr().out
    command = json.loads((tmp_path / "run" / "command.json").read_text())
    assert (command["teacher_model"], command["mean"], command["student"]) == (
        "small_cnn",
        [0.3],
        "my_nets:student",
    )


def test_weights_that_do_not_fit_the_named_teacher_are_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.save(
        create_model("tiny_cnn", in_channels=1, image_size=8).state_dict(), tmp_path / "w.pt"
    )
    argv = _distill_args(tmp_path / "w.pt", tmp_path / "run", "--teacher-model", "small_cnn")
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "to fit --teacher-model 'small_cnn'" in err
    assert len(err.strip().splitlines()) == 1


def test_a_command_record_without_a_run_is_replaced_by_the_next_run(
    tmp_path: Path, teacher_file: Path
) -> None:
    """A start that failed before any run file left command.json behind; the next new run
    must record its own options there, or a later --resume would take the stale ones."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "command.json").write_text('{"method": "fast-dfkd"}')
    assert main(_distill_args(teacher_file, run)) == 0
    assert json.loads((run / "command.json").read_text())["method"] == "ssd-kd"

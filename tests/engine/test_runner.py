"""The run engine: rounds, records, checkpoints, exact resume, non-finite guard."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ssdkd.engine import CheckpointError, atomic_save, load_checkpoint
from ssdkd.engine.evaluation import evaluate_accuracy
from ssdkd.engine.records import read_metrics
from ssdkd.engine.runner import CHECKPOINT_VERSION, NonFiniteLossError, run_rounds
from ssdkd.methods import SSDKD, FastDFKD, NoiseControl
from tests.engine.scripted import (
    COLLAPSED,
    GOOD,
    SWAPPED,
    Interrupted,
    ScriptedMethod,
    eval_data,
)
from tests.methods.tiny import (
    IMAGE_SHAPE,
    NORMALIZATION,
    NUM_CLASSES,
    TINY_FAST,
    TINY_NOISE,
    TINY_SSDKD,
    TinyNet,
    build,
    make_student,
    make_teacher,
)

ROOT = Path(__file__).resolve().parents[2]

# The tiny random teachers' synthetic data covers few classes, so these runs warn of
# collapse; the warning itself is tested in test_collapse.py.
pytestmark = pytest.mark.filterwarnings("ignore::ssdkd.engine.CollapseWarning")


def _job(tmp_path: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.engine.resume_job",
            "--run-dir",
            str(tmp_path / "run"),
            "--out",
            str(tmp_path / f"{name}.pt"),
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _assert_identical(a: dict, b: dict) -> None:
    for part in ("student", "generator"):
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key} differs"
    for key, value in a["buffer"].items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, b["buffer"][key]), f"buffer.{key} differs"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("straight")
    done = _job(tmp, "final")
    assert done.returncode == 0, done.stderr
    return load_checkpoint(tmp / "final.pt")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kill_round", "kill_after"), [(2, 0), (2, 1)], ids=["between", "mid-round"]
)
def test_a_killed_run_resumes_bit_identical(tmp_path, uninterrupted, kill_round, kill_after):
    killed = _job(
        tmp_path, "partial", "--kill-round", str(kill_round), "--kill-after-steps", str(kill_after)
    )
    assert killed.returncode == 3, killed.stderr
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["round"] == 2
    resumed = _job(tmp_path, "final", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    _assert_identical(uninterrupted, load_checkpoint(tmp_path / "final.pt"))
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["round"] for line in lines] == [1, 2, 3, 4]


def test_run_writes_config_metrics_checkpoints_and_history(tmp_path):
    method = build(SSDKD, TINY_SSDKD)
    x = torch.rand(32, 1, 8, 8)
    y = torch.randint(0, 4, (32,))
    result = run_rounds(method, eval_data=(x, y), run_dir=tmp_path, progress=False)
    assert [r["round"] for r in result.history] == [1, 2, 3, 4]
    assert [r["kd_steps"] for r in result.history] == [0, 3, 6, 9]
    assert [r["images_synthesized"] for r in result.history] == [16, 32, 48, 64]
    accuracies = [r["accuracy"] for r in result.history]
    assert result.final_accuracy == accuracies[-1]
    assert result.best_eval_accuracy == max(accuracies)
    assert result.best_round == accuracies.index(max(accuracies)) + 1
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["method"] == "SSDKD"
    assert config["buffer_size"] == TINY_SSDKD.buffer_size
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 4
    last = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert last["round"] == 4
    assert last["version"] == CHECKPOINT_VERSION
    assert {"trainer", "synthesis", "buffer", "streams"} <= set(last["method"])
    for key, value in last["method"]["trainer"]["student"].items():
        assert torch.equal(value, result.student.state_dict()[key])
    best = torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)
    assert (best["round"], best["accuracy"]) == (result.best_round, result.best_eval_accuracy)
    assert (tmp_path / "synthetic.pt").is_file()


def test_resume_without_a_checkpoint_starts_fresh(tmp_path):
    result = run_rounds(build(FastDFKD, TINY_FAST), run_dir=tmp_path, resume=True, progress=False)
    assert len(result.history) == TINY_FAST.rounds


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_corrupt_checkpoint_gives_an_error_naming_the_file(tmp_path, damage):
    run_rounds(build(FastDFKD, TINY_FAST), run_dir=tmp_path, progress=False)
    last = tmp_path / "checkpoints" / "last.pt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"last\.pt") as caught:
        run_rounds(build(FastDFKD, TINY_FAST), run_dir=tmp_path, resume=True, progress=False)
    # Regression: torch's multi-line advice (to load with weights_only=False) was repeated.
    assert "\n" not in str(caught.value)
    assert "weights_only" not in str(caught.value)


def test_resume_with_another_config_is_refused(tmp_path):
    run_rounds(build(FastDFKD, TINY_FAST), run_dir=tmp_path, progress=False)
    other = dataclasses.replace(TINY_FAST, kd_steps=5)
    # Regression: the message named the differing fields but not their values.
    with pytest.raises(CheckpointError, match="kd_steps: 3 in the checkpoint, 5 now"):
        run_rounds(build(FastDFKD, other), run_dir=tmp_path, resume=True, progress=False)


def test_extending_a_finished_run_is_refused_saying_why(tmp_path):
    run_rounds(build(FastDFKD, TINY_FAST), run_dir=tmp_path, progress=False)
    longer = dataclasses.replace(TINY_FAST, rounds=TINY_FAST.rounds + 2)
    with pytest.raises(CheckpointError, match="a longer run is another run, not a continuation"):
        run_rounds(build(FastDFKD, longer), run_dir=tmp_path, resume=True, progress=False)


def test_a_checkpoint_from_before_a_config_field_existed_resumes_at_its_default(tmp_path):
    """Adding ``synthesis_share`` once made every run checkpointed by the previous version
    refuse to resume ("another config, differs in synthesis_share")."""
    run_rounds(build(FastDFKD, TINY_FAST), run_dir=tmp_path, progress=False)
    last = tmp_path / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    del state["config"]["synthesis_share"]
    atomic_save(state, last)
    changed = dataclasses.replace(TINY_FAST, synthesis_share=0.5)
    with pytest.raises(CheckpointError, match="differs in synthesis_share"):
        run_rounds(build(FastDFKD, changed), run_dir=tmp_path, resume=True, progress=False)
    result = run_rounds(build(FastDFKD, TINY_FAST), run_dir=tmp_path, resume=True, progress=False)
    assert [r["round"] for r in result.history] == list(range(1, TINY_FAST.rounds + 1))


def test_a_checkpoint_recording_a_retired_field_still_resumes(tmp_path):
    """Prevents SSD-KD runs checkpointed before ``SSDKDConfig`` lost its inherited,
    ignored ``pool_capacity`` field from refusing to resume ("differs in pool_capacity")."""
    run_rounds(build(SSDKD, TINY_SSDKD), run_dir=tmp_path, progress=False)
    last = tmp_path / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    state["config"]["pool_capacity"] = 0
    atomic_save(state, last)
    result = run_rounds(build(SSDKD, TINY_SSDKD), run_dir=tmp_path, resume=True, progress=False)
    assert [r["round"] for r in result.history] == list(range(1, TINY_SSDKD.rounds + 1))


def test_repeated_non_finite_kd_losses_stop_the_run():
    method = build(NoiseControl, TINY_NOISE)
    with torch.no_grad():
        method.student.head.bias.fill_(float("inf"))
    with pytest.raises(NonFiniteLossError, match="3 consecutive KD steps"):
        run_rounds(method, progress=False, max_nonfinite_steps=3)


def test_a_generator_round_without_a_finite_loss_stops_the_run():
    method = build(FastDFKD, TINY_FAST)
    with torch.no_grad():
        method.student.head.bias.fill_(float("inf"))  # poisons the adversarial term
    with pytest.raises(NonFiniteLossError, match="inner generator steps"):
        run_rounds(method, progress=False)


def test_the_result_holds_the_final_round_student_not_the_best_evaluated_one(tmp_path):
    """Regression: the reported student was the best round on the test set.

    ``run_rounds`` used to load the weights of the round most accurate on ``eval_data``
    into the returned student and report that round's accuracy, a number selected on the
    evaluation data itself.
    """
    method = ScriptedMethod(students={1: GOOD, 2: GOOD, 3: SWAPPED})
    result = run_rounds(method, eval_data=eval_data(), run_dir=tmp_path, progress=False)
    assert [r["accuracy"] for r in result.history] == [0.25, 1.0, 1.0, 0.5]
    assert result.final_accuracy == 0.5
    assert (result.best_eval_accuracy, result.best_round) == (1.0, 2)
    assert result.student is method.student
    assert evaluate_accuracy(result.student, *eval_data()) == 0.5
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt", kind="student")
    assert best["round"] == 2
    assert torch.equal(best["state_dict"]["weight"], torch.eye(4))
    assert not torch.equal(result.student.weight.detach(), torch.eye(4))


def test_a_resumed_run_reports_its_final_round_and_reads_the_best_from_the_history(tmp_path):
    """Regression: the reported student was the best round on the test set, also on resume.

    A resumed run used to restore the stored best-round student and return it.
    """
    script = {"students": {1: GOOD, 2: SWAPPED, 3: SWAPPED}}
    with pytest.raises(Interrupted):
        run_rounds(
            ScriptedMethod(**script, fail_in_round=3),
            eval_data=eval_data(),
            run_dir=tmp_path,
            progress=False,
        )
    result = run_rounds(
        ScriptedMethod(**script),
        eval_data=eval_data(),
        run_dir=tmp_path,
        resume=True,
        progress=False,
    )
    assert [r["accuracy"] for r in result.history] == [0.25, 1.0, 0.5, 0.5]
    assert (result.final_accuracy, result.best_eval_accuracy, result.best_round) == (0.5, 1.0, 2)
    assert evaluate_accuracy(result.student, *eval_data()) == 0.5


def test_a_version_1_checkpoint_still_resumes(tmp_path):
    """Regression: checkpoints of the previous version were refused after the bump to 2.

    Version 1 also held the best round's student and accuracy; both are now ignored.
    """
    with pytest.raises(Interrupted):
        run_rounds(ScriptedMethod(fail_in_round=2), run_dir=tmp_path, progress=False)
    last = tmp_path / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    atomic_save({**state, "version": 1, "best_accuracy": None, "best_student": None}, last)
    result = run_rounds(ScriptedMethod(), run_dir=tmp_path, resume=True, progress=False)
    assert [r["round"] for r in result.history] == [1, 2, 3, 4]


def test_a_checkpoint_of_an_unknown_version_is_refused(tmp_path):
    with pytest.raises(Interrupted):
        run_rounds(ScriptedMethod(fail_in_round=2), run_dir=tmp_path, progress=False)
    last = tmp_path / "checkpoints" / "last.pt"
    atomic_save({**load_checkpoint(last), "version": 99}, last)
    with pytest.raises(CheckpointError, match="version 99"):
        run_rounds(ScriptedMethod(), run_dir=tmp_path, resume=True, progress=False)


def test_round_records_average_every_step_metric_over_the_applied_steps():
    def step_metrics(round_index: int, step: int) -> dict[str, float]:
        if step == 1:  # a skipped step: its NaN/inf must not reach the means
            return {"kd_loss": float("inf"), "kl": float("nan"), "skipped": 1.0, "beta": 0.5}
        return {
            "kd_loss": 2.0 * step,
            "kl": float(round_index + step),
            "weight_mean": 0.5,
            "beta": 0.1 * (round_index + step),
        }

    result = run_rounds(ScriptedMethod(step_metrics=step_metrics), progress=False)
    warmup, first_kd = result.history[0], result.history[1]
    assert warmup["kd_loss"] is None
    assert "kl" not in warmup
    assert first_kd["kd_loss"] == 2.0  # mean of steps 0 and 2: (0 + 4) / 2
    assert first_kd["kl"] == 2.0  # (1 + 3) / 2
    assert first_kd["weight_mean"] == 0.5
    assert first_kd["beta"] == pytest.approx(0.3)  # the last step's value, not a mean
    assert first_kd["nonfinite_steps"] == 1
    assert "skipped" not in first_kd


def test_round_records_hold_the_synthesis_and_evaluation_diagnostics(tmp_path):
    synth = {
        "synth_class_entropy": 0.9,
        "data_class_entropy": 0.8,
        "teacher_confidence": 0.7,
        "target_agreement": 0.6,
        "phi_mean": 0.05,
    }
    method = ScriptedMethod(
        students={1: GOOD, 2: COLLAPSED, 3: GOOD}, synth_metrics=dict.fromkeys(range(4), synth)
    )
    result = run_rounds(method, eval_data=eval_data(), run_dir=tmp_path, progress=False)
    for record in result.history:
        assert synth.items() <= record.items()
    assert [r["eval_top_class_share"] for r in result.history] == [1.0, 0.25, 1.0, 0.25]
    assert [r["eval_class_entropy"] for r in result.history] == [0.0, 1.0, 0.0, 1.0]
    assert read_metrics(tmp_path) == result.history


def test_a_run_without_eval_data_records_no_evaluation():
    result = run_rounds(ScriptedMethod(), progress=False)
    assert (result.final_accuracy, result.best_eval_accuracy, result.best_round) == (
        None,
        None,
        None,
    )
    for key in ("accuracy", "eval_top_class_share", "eval_class_entropy"):
        assert all(r[key] is None for r in result.history)


@pytest.mark.parametrize(
    ("eval_data_", "error", "match"),
    [
        ([torch.zeros(2, 1, 4, 4), torch.zeros(2)], TypeError, "tuple"),
        ((torch.zeros(2, 1, 4, 4), torch.zeros(3, dtype=torch.long)), ValueError, r"\(3,\)"),
        ((torch.zeros(0, 1, 4, 4), torch.zeros(0, dtype=torch.long)), ValueError, "at least"),
    ],
)
def test_bad_eval_data_is_refused_before_the_first_round(eval_data_, error, match):
    method = ScriptedMethod()
    with pytest.raises(error, match=match):
        run_rounds(method, eval_data=eval_data_, progress=False)
    assert method.images_synthesized == 0


def _other_teacher_method() -> FastDFKD:
    return FastDFKD(
        make_teacher(seed=3),
        make_student(),
        TINY_FAST,
        num_classes=NUM_CLASSES,
        image_shape=IMAGE_SHAPE,
        normalization=NORMALIZATION,
    )


def _other_student_method() -> FastDFKD:
    return FastDFKD(
        make_teacher(),
        TinyNet(width=8),
        TINY_FAST,
        num_classes=NUM_CLASSES,
        image_shape=IMAGE_SHAPE,
        normalization=NORMALIZATION,
    )


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (_other_teacher_method, "another teacher"),
        (_other_student_method, "another student architecture"),
    ],
)
def test_resume_with_another_teacher_or_student_is_refused(tmp_path, other, message):
    """Prevents ``--resume`` with another teacher or student continuing silently: the
    config record used to hold only the settings, not the networks."""
    run_rounds(build(FastDFKD, TINY_FAST), run_dir=tmp_path, progress=False)
    with pytest.raises(CheckpointError, match=message):
        run_rounds(other(), run_dir=tmp_path, resume=True, progress=False)


def test_a_version_2_checkpoint_without_fingerprints_still_resumes(tmp_path):
    with pytest.raises(Interrupted):
        run_rounds(ScriptedMethod(fail_in_round=2), run_dir=tmp_path, progress=False)
    last = tmp_path / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    config = {
        k: v
        for k, v in state["config"].items()
        if k not in ("teacher_fingerprint", "student_architecture")
    }
    old = {k: v for k, v in state.items() if k != "consecutive_nonfinite"}
    atomic_save({**old, "version": 2, "config": config}, last)
    result = run_rounds(ScriptedMethod(), run_dir=tmp_path, resume=True, progress=False)
    assert [r["round"] for r in result.history] == [1, 2, 3, 4]


def test_the_count_of_consecutive_skipped_steps_survives_a_resume(tmp_path):
    """Prevents a resume resetting the non-finite guard: a run that crashed after k
    skipped steps could then skip up to ``max_nonfinite_steps`` more before stopping."""

    def skipped(round_index: int, step: int) -> dict[str, float]:
        return {"kd_loss": float("nan"), "skipped": 1.0}

    with pytest.raises(Interrupted):
        run_rounds(
            ScriptedMethod(step_metrics=skipped, fail_in_round=2),
            run_dir=tmp_path,
            progress=False,
            max_nonfinite_steps=5,
        )  # round 2 skipped 3 steps, then round 3 crashed
    with pytest.raises(NonFiniteLossError, match=r"5 consecutive KD steps .*round 3"):
        run_rounds(
            ScriptedMethod(step_metrics=skipped),
            run_dir=tmp_path,
            resume=True,
            progress=False,
            max_nonfinite_steps=5,
        )


def test_a_crash_between_last_and_best_is_repaired_on_resume(tmp_path):
    """Prevents ``best.pt`` and ``last.pt`` disagreeing after a crash between their writes:
    the history then names a best round whose student ``best.pt`` does not hold."""
    with pytest.raises(Interrupted):
        run_rounds(
            ScriptedMethod(students={0: SWAPPED, 1: GOOD}, fail_in_round=2),
            eval_data=eval_data(),
            run_dir=tmp_path,
            progress=False,
        )
    best_path = tmp_path / "checkpoints" / "best.pt"
    best = load_checkpoint(best_path)
    assert best["round"] == 2
    # What a crash after writing last.pt and before writing best.pt leaves behind.
    atomic_save({**best, "round": 1, "state_dict": {"weight": torch.zeros(4, 4)}}, best_path)
    run_rounds(
        ScriptedMethod(students={0: SWAPPED, 1: GOOD}),
        eval_data=eval_data(),
        run_dir=tmp_path,
        resume=True,
        progress=False,
    )
    repaired = load_checkpoint(best_path, kind="student")
    assert repaired["round"] == 2
    assert torch.equal(repaired["state_dict"]["weight"], torch.eye(4))


def test_checkpoint_renames_are_fsynced_in_their_directory(tmp_path, monkeypatch):
    """Prevents losing a checkpoint on power loss: the file was fsynced but not the
    directory entry its rename created."""
    synced: list[bool] = []
    fsync = os.fsync

    def record(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", record)
    atomic_save({"x": torch.ones(1)}, tmp_path / "a" / "state.pt")
    assert synced == [False, True]


def test_eval_every_evaluates_on_its_rounds_and_the_last():
    result = run_rounds(
        ScriptedMethod(students={1: GOOD}), eval_data=eval_data(), eval_every=3, progress=False
    )
    assert [r["accuracy"] is not None for r in result.history] == [False, False, True, True]
    assert result.final_accuracy == 1.0


def test_checkpoint_every_checkpoints_on_its_rounds_and_a_resume_repeats_the_rest(tmp_path):
    """A crash after an unsaved round resumes from the last checkpoint and ends as an
    uninterrupted run does, with one metrics line per round."""
    with pytest.raises(Interrupted):
        run_rounds(
            ScriptedMethod(students={1: SWAPPED, 2: GOOD}, fail_in_round=3),
            eval_data=eval_data(),
            run_dir=tmp_path,
            checkpoint_every=2,
            progress=False,
        )
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["round"] == 2
    result = run_rounds(
        ScriptedMethod(students={1: SWAPPED, 2: GOOD}),
        eval_data=eval_data(),
        run_dir=tmp_path,
        resume=True,
        checkpoint_every=2,
        progress=False,
    )
    assert [r["round"] for r in result.history] == [1, 2, 3, 4]
    assert result.final_accuracy == 1.0
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["round"] for line in lines] == [1, 2, 3, 4]
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["round"] == 4


@pytest.mark.parametrize("name", ["eval_every", "checkpoint_every"])
@pytest.mark.parametrize("value", [0, 1.5, True])
def test_bad_schedules_are_refused_naming_the_argument(name, value):
    with pytest.raises(ValueError, match=rf"`{name}` to be an int >= 1"):
        run_rounds(ScriptedMethod(), progress=False, **{name: value})


def test_a_run_directory_holding_a_run_is_refused_without_resume_or_overwrite(tmp_path):
    """Prevents a finished run being deleted without a word: a fresh run into its
    directory replaced its metrics, checkpoints and plots and exited 0."""
    run_rounds(ScriptedMethod(students={1: GOOD}), eval_data=eval_data(), run_dir=tmp_path,
               progress=False)  # fmt: skip
    before = (tmp_path / "metrics.jsonl").read_bytes()
    last = (tmp_path / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(FileExistsError, match=r"already holds a run \(ScriptedMethod, 4 of 4"):
        run_rounds(ScriptedMethod(), run_dir=tmp_path, progress=False)
    assert (tmp_path / "metrics.jsonl").read_bytes() == before
    assert (tmp_path / "checkpoints" / "last.pt").read_bytes() == last
    result = run_rounds(
        ScriptedMethod(students={1: SWAPPED}),
        eval_data=eval_data(),
        run_dir=tmp_path,
        overwrite=True,
        progress=False,
    )
    assert result.final_accuracy == 0.5
    stored = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert stored["accuracy"] == 0.5  # the old run's best.pt (accuracy 1.0) is gone

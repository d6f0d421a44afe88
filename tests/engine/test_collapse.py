"""The collapse warning: what a record calls for, and when a run issues it."""

from __future__ import annotations

import warnings

import pytest

from ssdkd.engine import CollapseWarning
from ssdkd.engine.collapse import (
    DEFAULT_MAX_TOP_CLASS_SHARE,
    DEFAULT_MIN_CLASS_ENTROPY,
    collapse_message,
)
from ssdkd.engine.runner import run_rounds
from tests.engine.scripted import COLLAPSED, GOOD, Interrupted, ScriptedMethod, eval_data

HEALTHY = {"data_class_entropy": 0.9, "synth_class_entropy": 0.95}
COLLAPSED_DATA = {"data_class_entropy": 0.0, "synth_class_entropy": 0.0}


def _every_round(metrics: dict[str, float]) -> dict[int, dict[str, float]]:
    return dict.fromkeys(range(4), metrics)


def test_the_defaults_are_one_half() -> None:
    assert (DEFAULT_MIN_CLASS_ENTROPY, DEFAULT_MAX_TOP_CLASS_SHARE) == (0.5, 0.5)


def test_a_healthy_record_calls_for_no_warning() -> None:
    record = {"round": 5, **HEALTHY, "eval_top_class_share": 0.12}
    assert collapse_message(record) is None


def test_a_record_without_diagnostics_calls_for_no_warning() -> None:
    assert collapse_message({"round": 5, "accuracy": 0.1, "eval_top_class_share": None}) is None


def test_collapsed_synthetic_data_is_described_with_its_numbers_and_remedies() -> None:
    message = collapse_message({"round": 7, "data_class_entropy": 0.31})
    assert message is not None
    assert message.startswith("Round 7:")
    assert "0.31" in message
    assert "0.50" in message
    assert "the synthetic data the student learns from" in message
    for remedy in ("conditional_generator", "warm-up", "normalization"):
        assert remedy in message
    student = collapse_message({"round": 7, "eval_top_class_share": 0.9})
    assert student is not None
    for remedy in ("learning rate", "normalization"):
        assert remedy in student


def test_the_round_batch_entropy_is_read_when_the_data_entropy_is_missing() -> None:
    message = collapse_message({"round": 2, "synth_class_entropy": 0.2})
    assert message is not None
    assert "this round's synthetic batch" in message
    # The data the student learns from outranks the round's batch when both are given.
    assert (
        collapse_message({"round": 2, "synth_class_entropy": 0.2, "data_class_entropy": 0.9})
        is None
    )


def test_a_collapsed_student_is_described_with_its_share() -> None:
    message = collapse_message({"round": 4, "eval_top_class_share": 0.5})
    assert message is not None
    assert "50% of the evaluation images" in message


def test_both_signs_go_into_one_message() -> None:
    message = collapse_message({"round": 4, **COLLAPSED_DATA, "eval_top_class_share": 1.0})
    assert message is not None
    assert "synthetic data has collapsed" in message
    assert "100% of the evaluation images" in message


def test_the_thresholds_apply() -> None:
    record = {"round": 4, "data_class_entropy": 0.6, "eval_top_class_share": 0.3}
    assert collapse_message(record) is None
    assert collapse_message(record, min_class_entropy=0.7) is not None
    assert collapse_message(record, max_top_class_share=0.3) is not None
    assert collapse_message({"round": 4, "data_class_entropy": 0.0}, min_class_entropy=0.0) is None


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("min_class_entropy", 1.5, ValueError),
        ("min_class_entropy", -0.1, ValueError),
        ("max_top_class_share", float("nan"), ValueError),
        ("max_top_class_share", True, TypeError),
        ("max_top_class_share", "0.5", TypeError),
    ],
)
def test_bad_thresholds_are_refused_before_the_first_round(
    name: str, value: object, error: type[Exception]
) -> None:
    method = ScriptedMethod()
    with pytest.raises(error, match=f"`{name}` to be a number in \\[0, 1\\], got"):
        run_rounds(method, progress=False, **{name: value})  # type: ignore[arg-type]
    assert method.images_synthesized == 0
    with pytest.raises(error, match=name):
        collapse_message({"round": 1}, **{name: value})  # type: ignore[arg-type]


def test_a_collapsed_run_warns_once_with_what_was_seen(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The synthetic data has one class and the student predicts class 0 for every image."""
    method = ScriptedMethod(
        students=dict.fromkeys(range(4), COLLAPSED), synth_metrics=_every_round(COLLAPSED_DATA)
    )
    with pytest.warns(CollapseWarning) as caught:
        result = run_rounds(method, eval_data=eval_data(), progress=True)
    messages = [str(w.message) for w in caught if issubclass(w.category, CollapseWarning)]
    assert len(messages) == 1
    # Round 2 is the first KD round and is left out; round 3 is the first checked.
    assert messages[0].startswith("Round 3:")
    assert "100% of the evaluation images" in messages[0]
    assert [r.get("warnings") for r in result.history] == [None, None, messages, None]
    assert f"warning: {messages[0]}" in capsys.readouterr().err


def test_collapsed_synthetic_data_alone_warns_without_eval_data() -> None:
    method = ScriptedMethod(
        students=dict.fromkeys(range(4), GOOD), synth_metrics=_every_round(COLLAPSED_DATA)
    )
    with pytest.warns(CollapseWarning, match="synthetic data has collapsed"):
        run_rounds(method, progress=False)


def test_a_student_collapsed_only_in_its_first_kd_round_gives_no_warning() -> None:
    method = ScriptedMethod(
        students={1: COLLAPSED, 2: GOOD, 3: GOOD}, synth_metrics=_every_round(HEALTHY)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollapseWarning)
        run_rounds(method, eval_data=eval_data(), progress=False)


def test_a_healthy_run_gives_no_warning(capsys: pytest.CaptureFixture[str]) -> None:
    method = ScriptedMethod(
        students=dict.fromkeys(range(4), GOOD), synth_metrics=_every_round(HEALTHY)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollapseWarning)
        result = run_rounds(method, eval_data=eval_data(), progress=True)
    assert all("warnings" not in r for r in result.history)
    assert "warning" not in capsys.readouterr().err


def test_a_resumed_run_does_not_repeat_the_warning(tmp_path) -> None:
    """The run warned in round 3, was interrupted in round 4 and resumes in this process."""
    script = {
        "students": dict.fromkeys(range(4), COLLAPSED),
        "synth_metrics": _every_round(COLLAPSED_DATA),
    }
    with pytest.raises(Interrupted), pytest.warns(CollapseWarning, match="Round 3"):
        run_rounds(
            ScriptedMethod(**script, fail_in_round=3),
            eval_data=eval_data(),
            run_dir=tmp_path,
            progress=False,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollapseWarning)
        result = run_rounds(
            ScriptedMethod(**script),
            eval_data=eval_data(),
            run_dir=tmp_path,
            resume=True,
            progress=False,
        )
    assert [r["round"] for r in result.history if "warnings" in r] == [3]


def test_a_warning_turned_into_an_error_stops_a_run_that_resumes(tmp_path) -> None:
    script = {"synth_metrics": _every_round(COLLAPSED_DATA)}
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollapseWarning)
        with pytest.raises(CollapseWarning):
            run_rounds(ScriptedMethod(**script), run_dir=tmp_path, progress=False)
        result = run_rounds(ScriptedMethod(**script), run_dir=tmp_path, resume=True, progress=False)
    assert [r["round"] for r in result.history] == [1, 2, 3, 4]


def test_the_collapse_hint_ends_the_warning(tmp_path) -> None:
    """The command line's sentence about a preset made for another input size must reach
    the one place a collapsing run's user reads (it never mentioned the preset)."""
    method = ScriptedMethod(synth_metrics=_every_round(COLLAPSED_DATA))
    with pytest.warns(CollapseWarning) as caught:
        result = run_rounds(
            method, eval_data=eval_data(), progress=False, collapse_hint="Preset for 3x32x32."
        )
    assert str(caught[0].message).endswith("Preset for 3x32x32.")
    assert next(r for r in result.history if "warnings" in r)["warnings"][0].endswith(
        "Preset for 3x32x32."
    )

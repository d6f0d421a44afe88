"""``ssdkd.distill`` end to end on real digits, and its argument checks."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

import ssdkd
from ssdkd.data import Dataset, load_dataset
from ssdkd.engine.teacher import TEACHER_RECIPES, train_teacher
from ssdkd.methods import (
    DEEPINVERSION_DIGITS,
    FAST2_DIGITS,
    SSDKD_DIGITS,
    FastDFKDConfig,
    noise_control_for,
)
from ssdkd.models import create_model

# The noise control's student collapses onto one class early on, by design.
pytestmark = pytest.mark.filterwarnings("ignore::ssdkd.engine.CollapseWarning")

# Small budgets: a few seconds each on two CPU cores, far below the demo's.
BUDGETS = {
    "ssd-kd": dataclasses.replace(SSDKD_DIGITS, rounds=12, warmup_rounds=4, kd_steps=40),
    "fast-dfkd": dataclasses.replace(FAST2_DIGITS, rounds=12, warmup_rounds=4, kd_steps=40),
    "deepinversion": dataclasses.replace(
        DEEPINVERSION_DIGITS, rounds=4, kd_steps=80, iterations=100
    ),
}


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


@pytest.fixture(scope="module")
def teacher(digits: Dataset) -> nn.Module:
    recipe = TEACHER_RECIPES["digits"]
    torch.manual_seed(0)
    model = create_model("small_cnn", num_classes=10, in_channels=1, image_size=8)
    result = train_teacher(
        model, digits, **{**dataclasses.asdict(recipe), "epochs": 10}, seed=0, progress=False
    )
    assert result.accuracy >= 0.95
    return result.model


def _distill(teacher: nn.Module, digits: Dataset, method: str, config: object) -> float:
    torch.manual_seed(0)
    student = create_model("tiny_cnn", num_classes=10, in_channels=1, image_size=8)
    result = ssdkd.distill(
        teacher,
        student,
        method,
        num_classes=10,
        image_shape=digits.image_shape,
        normalization=(digits.mean, digits.std),
        config=config,  # type: ignore[arg-type]
        eval_data=(digits.x_test, digits.y_test),
        seed=0,
        progress=False,
    )
    assert result.final_accuracy is not None
    return result.final_accuracy


@pytest.fixture(scope="module")
def noise_accuracy(teacher: nn.Module, digits: Dataset) -> float:
    ssd = BUDGETS["ssd-kd"]
    control = noise_control_for(ssd, pool_size=ssd.buffer_size)
    return _distill(teacher, digits, "noise-control", control)


@pytest.mark.slow
@pytest.mark.parametrize("method", list(BUDGETS))
def test_data_free_student_clearly_beats_the_noise_control(
    method: str, teacher: nn.Module, digits: Dataset, noise_accuracy: float
) -> None:
    accuracy = _distill(teacher, digits, method, BUDGETS[method])
    assert accuracy >= noise_accuracy + 0.2, (method, accuracy, noise_accuracy)


def _tiny_models() -> tuple[nn.Module, nn.Module]:
    make = lambda: create_model("tiny_cnn", num_classes=10, in_channels=1, image_size=8)  # noqa: E731
    return make(), make()


NORMALIZATION = ((0.3,), (0.4,))


def test_an_unknown_method_is_refused() -> None:
    teacher, student = _tiny_models()
    with pytest.raises(ValueError, match=r"`method`.*'ssdkd'"):
        ssdkd.distill(
            teacher,
            student,
            "ssdkd",
            num_classes=10,
            image_shape=(1, 8, 8),
            normalization=NORMALIZATION,
        )


def test_a_config_of_another_method_is_refused() -> None:
    teacher, student = _tiny_models()
    with pytest.raises(TypeError, match=r"SSDKDConfig.*FastDFKDConfig"):
        ssdkd.distill(
            teacher,
            student,
            "ssd-kd",
            num_classes=10,
            image_shape=(1, 8, 8),
            normalization=NORMALIZATION,
            config=FastDFKDConfig(),
        )


def test_rounds_must_exceed_the_warmup() -> None:
    teacher, student = _tiny_models()
    with pytest.raises(ValueError, match=r"`rounds`.*warmup_rounds \(5\)"):
        ssdkd.distill(
            teacher,
            student,
            "ssd-kd",
            num_classes=10,
            image_shape=(1, 8, 8),
            normalization=NORMALIZATION,
            config=SSDKD_DIGITS,
            rounds=5,
        )


def test_a_grey_teacher_takes_a_number_per_statistic() -> None:
    """Prevents ``normalization=(0.13, 0.31)`` for a one-channel teacher being a TypeError
    (``float`` is not iterable): a bare number is the one channel's value, as in
    torchvision's normalisation."""
    teacher, student = _tiny_models()
    config = dataclasses.replace(SSDKD_DIGITS, warmup_rounds=1, kd_steps=2)
    result = ssdkd.distill(
        teacher,
        student,
        "ssd-kd",
        num_classes=10,
        image_shape=(1, 8, 8),
        normalization=(0.3, 0.4),
        config=config,
        rounds=2,
        progress=False,
    )
    assert result.history[-1]["kd_steps"] == 2


@pytest.mark.parametrize(
    ("normalization", "error", "message"),
    [
        (((0.3, 0.3), (0.4, 0.4)), ValueError, r"1 channel value\(s\) each"),
        ((0.3, 0.0), ValueError, r"each std in \(0, 1\]\), got mean \(0.3,\) and std \(0.0,\)"),
        ((math.nan, 0.4), ValueError, r"`normalization\[0\] \(mean\)`.*finite"),
        (("0.3", 0.4), TypeError, r"`normalization\[0\] \(mean\)` to be a number"),
        ((0.3,), TypeError, r"`normalization` as \(mean, std\)"),
    ],
)
def test_bad_normalization_is_refused_naming_it(
    normalization: object, error: type[Exception], message: str
) -> None:
    teacher, student = _tiny_models()
    with pytest.raises(error, match=message):
        ssdkd.distill(
            teacher,
            student,
            "ssd-kd",
            num_classes=10,
            image_shape=(1, 8, 8),
            normalization=normalization,  # type: ignore[arg-type]
        )


def test_an_unknown_precision_is_refused() -> None:
    teacher, student = _tiny_models()
    with pytest.raises(ValueError, match="`precision`"):
        ssdkd.distill(
            teacher,
            student,
            "ssd-kd",
            num_classes=10,
            image_shape=(1, 8, 8),
            normalization=NORMALIZATION,
            precision="fp8",
        )


def test_a_teacher_without_batchnorm_is_refused_with_a_clear_error() -> None:
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    _, student = _tiny_models()
    with pytest.raises(ValueError, match="BatchNorm"):
        ssdkd.distill(
            teacher,
            student,
            "fast-dfkd",
            num_classes=10,
            image_shape=(1, 8, 8),
            normalization=NORMALIZATION,
            config=FAST2_DIGITS,
        )


def test_the_teacher_is_frozen_in_eval_mode() -> None:
    teacher, student = _tiny_models()
    teacher.train()
    config = dataclasses.replace(SSDKD_DIGITS, warmup_rounds=1, kd_steps=2)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    ssdkd.distill(
        teacher,
        student,
        "ssd-kd",
        num_classes=10,
        image_shape=(1, 8, 8),
        normalization=NORMALIZATION,
        config=config,
        rounds=2,
        progress=False,
    )
    assert not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_seed_alone_fixes_the_run_and_the_callers_random_state_is_left_alone():
    """Prevents ``distill`` changing the caller's global RNG (it called
    ``torch.manual_seed(seed)``) and a run depending on the caller's RNG state (the meta
    generator was initialised from it): with the student from ``create_model(seed=)``,
    two runs after different global seeds end bit-identical."""
    from ssdkd.methods import SSDKD_DIGITS
    from ssdkd.models import create_model

    config = dataclasses.replace(
        SSDKD_DIGITS,
        rounds=3,
        warmup_rounds=1,
        kd_steps=3,
        synthesis_batch_size=16,
        kd_batch_size=16,
        buffer_size=64,
    )
    students = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        before = torch.get_rng_state()
        teacher = create_model("tiny_cnn", num_classes=10, in_channels=1, image_size=8, seed=5)
        student = create_model("tiny_cnn", num_classes=10, in_channels=1, image_size=8, seed=6)
        result = ssdkd.distill(
            teacher,
            student,
            "ssd-kd",
            num_classes=10,
            image_shape=(1, 8, 8),
            normalization=((0.3,), (0.4,)),
            config=config,
            seed=3,
            progress=False,
        )
        assert torch.equal(torch.get_rng_state(), before)
        students.append(result.student.state_dict())
    for key in students[0]:
        assert torch.equal(students[0][key], students[1][key]), key

"""A wrong ``image_shape`` or ``num_classes`` is caught when the method is built."""

from __future__ import annotations

import pytest
import torch

import ssdkd
from ssdkd.methods import METHODS
from ssdkd.models import create_model
from tests.methods.tiny import tiny_config


def _distill(**changes: object) -> None:
    teacher = create_model("small_cnn", num_classes=10, in_channels=1, image_size=28, seed=0)
    student = create_model("tiny_cnn", num_classes=10, in_channels=1, image_size=28, seed=1)
    arguments = {
        "num_classes": 10,
        "image_shape": (1, 28, 28),
        "normalization": ((0.5,), (0.5,)),
        "config": tiny_config(METHODS["fast-dfkd"]),
        "progress": False,
    }
    ssdkd.distill(
        changes.pop("teacher", teacher),
        changes.pop("student", student),
        "fast-dfkd",
        **{**arguments, **changes},
    )


def test_a_wrong_image_shape_is_an_error_naming_it() -> None:
    """Regression: a 32×32 image_shape for a 28×28 teacher failed inside the first round
    with 'mat1 and mat2 shapes cannot be multiplied'."""
    with pytest.raises(
        ValueError, match=r"the teacher to take images of `image_shape` \(1, 32, 32\)"
    ):
        _distill(image_shape=(1, 32, 32), normalization=((0.5,), (0.5,)))


def test_a_wrong_num_classes_is_an_error_naming_what_the_teacher_returns() -> None:
    """Regression: num_classes=100 for a 10-class teacher ended in 'IndexError: Target 67
    is out of bounds' during synthesis."""
    with pytest.raises(
        ValueError,
        match=r"`num_classes` to match the teacher's 10 output logits, got num_classes=100",
    ):
        _distill(num_classes=100)


def test_a_student_with_another_number_of_classes_is_named() -> None:
    student = create_model("tiny_cnn", num_classes=7, in_channels=1, image_size=28)
    with pytest.raises(ValueError, match=r"the student's 7 output logits, got num_classes=10"):
        _distill(student=student)


def test_the_probe_changes_neither_network() -> None:
    teacher = create_model("small_cnn", num_classes=10, in_channels=1, image_size=28, seed=0)
    student = create_model("tiny_cnn", num_classes=10, in_channels=1, image_size=28, seed=1)
    student.train()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    spec = METHODS["fast-dfkd"]
    spec.method_class(
        teacher,
        student,
        tiny_config(spec),
        num_classes=10,
        image_shape=(1, 28, 28),
        normalization=((0.5,), (0.5,)),
    )
    assert student.training
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())


def test_images_on_the_0_to_255_scale_are_refused_where_they_enter() -> None:
    """Regression: uint8 eval_data gave 11% accuracy, silently."""
    images = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (8,))
    with pytest.raises(
        ValueError, match=r"`eval_data` images as floats in \[0, 1\], got dtype torch.uint8"
    ):
        _distill(eval_data=(images, labels))
    with pytest.raises(
        ValueError, match=r"`eval_data` images in \[0, 1\] .* got values in \[0, 255\]"
    ):
        _distill(
            eval_data=(
                torch.full((8, 1, 28, 28), 255.0).index_fill_(0, torch.tensor([0]), 0.0),
                labels,
            )
        )


def test_a_normalization_of_0_to_255_pixels_is_refused() -> None:
    """Regression: normalization=(72.9, 90.0) gave 9.4% accuracy, silently."""
    with pytest.raises(
        ValueError, match=r"images in \[0, 1\] .* got mean \(72.9,\) and std \(90.0,\)"
    ):
        _distill(normalization=((72.9,), (90.0,)))

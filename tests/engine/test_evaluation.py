"""Predictions and accuracy on held-out data."""

from __future__ import annotations

import pytest
import torch

from ssdkd.engine.evaluation import accuracy_of, evaluate_accuracy, evaluate_predictions
from tests.engine.scripted import PixelClassifier, eval_data


def _identity_student() -> PixelClassifier:
    student = PixelClassifier()
    with torch.no_grad():
        student.weight.copy_(torch.eye(4))
    return student


def test_predictions_come_in_batches_and_match_one_pass() -> None:
    images, labels = eval_data(per_class=3)
    predictions = evaluate_predictions(_identity_student(), images, batch_size=5)
    assert predictions.dtype == torch.int64
    assert torch.equal(predictions, labels)


def test_predictions_restore_the_training_flag() -> None:
    student = _identity_student().train()
    evaluate_predictions(student, eval_data()[0])
    assert student.training


def test_predictions_apply_the_normalization() -> None:
    images, _ = eval_data()
    # (x − 1) / 1 turns the single 1 into 0 and every 0 into −1: the argmax stays.
    predictions = evaluate_predictions(_identity_student(), images, normalize=((1.0,), (1.0,)))
    assert torch.equal(predictions, eval_data()[1])


def test_accuracy_is_the_share_of_right_predictions() -> None:
    images, labels = eval_data()
    assert evaluate_accuracy(_identity_student(), images, labels) == 1.0
    assert evaluate_accuracy(PixelClassifier(), images, labels) == 0.25  # always class 0
    assert accuracy_of(torch.tensor([1, 1]), torch.tensor([1, 0])) == 0.5


@pytest.mark.parametrize(
    "call",
    [
        lambda: evaluate_predictions(PixelClassifier(), torch.zeros(0, 1, 4, 4)),
        lambda: evaluate_predictions(PixelClassifier(), torch.zeros(2, 1, 4, 4), batch_size=0),
        lambda: evaluate_accuracy(PixelClassifier(), torch.zeros(2, 1, 4, 4), torch.zeros(3)),
        lambda: accuracy_of(torch.zeros(2), torch.zeros(3)),
        lambda: accuracy_of(torch.zeros(0), torch.zeros(0)),
    ],
    ids=["no-images", "batch-size", "count-mismatch", "shape-mismatch", "empty"],
)
def test_bad_input_is_refused(call) -> None:
    with pytest.raises(ValueError, match="Expected"):
        call()

"""invert: the inner loop every synthesiser shares."""

from __future__ import annotations

import torch

from ssdkd.generators import Augment, PixelGenerator
from ssdkd.methods.common import ModelInput
from ssdkd.methods.inversion import invert
from ssdkd.methods.precision import Precision
from tests.methods.tiny import IMAGE_SHAPE, make_student, make_teacher


def _run(losses: list[float], student=None):  # type: ignore[no-untyped-def]
    """Invert with an objective whose loss is the scripted value times mean(pixels)."""
    gen = torch.Generator().manual_seed(0)
    pixels = PixelGenerator(4, IMAGE_SHAPE[0], IMAGE_SHAPE[1], generator=gen)
    values = iter(losses)
    seen: list[torch.Tensor] = []
    modes: list[bool] = []

    def objective(images, inputs, teacher_logits, stats):  # type: ignore[no-untyped-def]
        assert stats  # the BN hook recorded the teacher's layers
        seen.append(images.detach().clone())
        if student is not None:
            modes.append(student.training)
        loss = next(values) * images.mean() + 0 * teacher_logits.sum()
        return loss, torch.stack([loss, loss * 2])

    device = torch.device("cpu")
    result = invert(
        len(losses),
        pixels,
        objective,
        torch.optim.SGD(pixels.parameters(), lr=0.1),
        teacher=make_teacher(),
        model_input=ModelInput((0.5,), (0.25,)),
        augment=Augment(crop_padding=0, flip=False),
        generator=gen,
        precision=Precision("fp32", device),
        step_precision=Precision("fp32", device),
        track_stats=True,
        student=student,
    )
    return result, seen, modes


def test_the_lowest_loss_applied_iterate_is_kept_and_skipped_steps_never() -> None:
    result, seen, _ = _run([3.0, 1.0, float("nan"), 2.0])
    losses = [3.0 * seen[0].mean(), 1.0 * seen[1].mean(), 2.0 * seen[3].mean()]
    best = min(range(3), key=lambda i: float(losses[i]))
    assert torch.equal(result.best_images, seen[[0, 1, 3][best]])
    assert torch.equal(result.last_images, seen[3])
    assert int(result.skipped) == 1
    assert torch.allclose(result.last_parts, torch.stack([losses[2], losses[2] * 2]))
    assert result.last_stats  # the BN statistics of the last applied step


def test_a_run_without_an_applied_step_reports_nan_and_counts_every_skip() -> None:
    result, _, _ = _run([float("nan")] * 3)
    assert int(result.skipped) == 3
    assert bool(torch.isnan(result.best_parts).all())
    assert bool(torch.isnan(result.last_parts).all())


def test_the_student_is_evaluated_in_eval_mode_and_given_back_in_its_mode() -> None:
    student = make_student().train()
    _, _, modes = _run([1.0, 1.0], student=student)
    assert modes == [False, False]
    assert student.training

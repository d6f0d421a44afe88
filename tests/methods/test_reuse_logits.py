"""SSD-KD's KD step takes the teacher logits stored at admission when nothing augments."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ssdkd.losses import KDLoss
from ssdkd.methods import SSDKD, StudentStep
from tests.methods.tiny import TINY_SSDKD, TinyNet, build


def _count_forwards(module: torch.nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_hook(lambda m, a, o: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.mark.parametrize(
    ("augment", "reuse", "teacher_runs"),
    [(False, True, False), (True, True, True), (False, False, True)],
)
def test_the_teacher_runs_in_a_kd_step_only_when_its_logits_cannot_be_reused(
    augment: bool, reuse: bool, teacher_runs: bool
) -> None:
    config = dataclasses.replace(TINY_SSDKD, kd_augment=augment, reuse_teacher_logits=reuse)
    method = build(SSDKD, config)
    method.synthesize(0)
    calls = _count_forwards(method.teacher)
    method.distill_step()
    assert (calls[0] > 0) == teacher_runs


def test_reused_logits_give_the_step_the_teacher_would_have_given() -> None:
    """The stored logits are the teacher's on the stored images, so both steps agree."""
    config = dataclasses.replace(TINY_SSDKD, kd_augment=False)
    reused = build(SSDKD, config)
    recomputed = build(SSDKD, dataclasses.replace(config, reuse_teacher_logits=False))
    for method in (reused, recomputed):
        method.synthesize(0)
    a, b = reused.distill_step(), recomputed.distill_step()
    torch.testing.assert_close(a["kl"], b["kl"], rtol=1e-5, atol=1e-7)
    for p, q in zip(reused.student.parameters(), recomputed.student.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)


def test_stored_logits_are_refused_where_the_batch_is_augmented() -> None:
    from ssdkd.generators import Augment

    student, teacher = TinyNet(), TinyNet().eval()
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    step = StudentStep(
        student,
        optimizer,
        KDLoss(4.0),
        teacher=teacher,
        augment=Augment(crop_padding=1),
        generator=torch.Generator().manual_seed(0),
    )
    with pytest.raises(ValueError, match="without augmentation or mixup"):
        step.step(torch.rand(4, 1, 8, 8), teacher_logits=torch.zeros(4, 4))
    plain = StudentStep(student, optimizer, KDLoss(4.0), teacher=teacher)
    with pytest.raises(ValueError, match=r"`teacher_logits` for the 4 images, got shape \(3, 4\)"):
        plain.step(torch.rand(4, 1, 8, 8), teacher_logits=torch.zeros(3, 4))

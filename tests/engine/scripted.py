"""A scripted stand-in method: the engine's view of a run, with every number chosen.

The student reads the first K pixels of an image as its logits through a K×K matrix, so
its predictions on :func:`eval_data` follow from the matrix alone: the identity gives every
label right, a swap of two classes gets half of a 4-class set wrong, and a bias on one
class makes it predict that class for every image. Each KD step sets the matrix the
script gives for its round and returns the step metrics the script gives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from ssdkd.methods import DistillationMethod, NoiseControlConfig

NUM_CLASSES = 4
IMAGE_SHAPE = (1, 4, 4)
CONFIG = NoiseControlConfig(rounds=4, warmup_rounds=1, kd_steps=3, kd_batch_size=4, pool_size=8)
"""Rounds 1..4; round 1 is warm-up, rounds 2..4 run 3 KD steps each."""


class PixelClassifier(nn.Module):
    """logits = W · (first K pixels) + b."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(NUM_CLASSES, NUM_CLASSES))
        self.bias = nn.Parameter(torch.zeros(NUM_CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :NUM_CLASSES] @ self.weight.T + self.bias


def eval_data(per_class: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """A balanced set: an image of class c is 1 at pixel c and 0 elsewhere."""
    labels = torch.arange(NUM_CLASSES).repeat(per_class)
    images = torch.zeros(labels.shape[0], *IMAGE_SHAPE)
    images.view(labels.shape[0], -1)[torch.arange(labels.shape[0]), labels] = 1.0
    return images, labels


GOOD = "good"
"""Every prediction right: accuracy 1, top-class share 1/4."""
SWAPPED = "swapped"
"""Classes 0 and 1 swapped: accuracy 1/2, top-class share 1/4."""
COLLAPSED = "collapsed"
"""Class 0 for every image: accuracy 1/4, top-class share 1."""


def _student_state(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    weight = torch.eye(NUM_CLASSES)
    bias = torch.zeros(NUM_CLASSES)
    if kind == SWAPPED:
        weight = weight[[1, 0, 2, 3]]
    elif kind == COLLAPSED:
        bias[0] = 10.0
    return weight, bias


StepMetrics = Callable[[int, int], Mapping[str, float]]
"""``(round_index, step_in_round) -> metrics`` of one KD step (``skipped`` defaults to 0)."""


class ScriptedMethod(DistillationMethod):
    """A :class:`DistillationMethod` whose rounds follow a script.

    Args:
        students: Round index → the student the round's KD steps leave (:data:`GOOD`,
            :data:`SWAPPED` or :data:`COLLAPSED`); rounds not listed leave it as it is.
        synth_metrics: Round index → what ``synthesize`` returns (besides the count).
        step_metrics: The metrics of each KD step (default ``kd_loss`` 1.0).
        fail_in_round: ``synthesize`` raises :class:`Interrupted` in this round.
    """

    config_class = NoiseControlConfig
    needs_batchnorm = False

    def __init__(
        self,
        *,
        students: Mapping[int, str] | None = None,
        synth_metrics: Mapping[int, Mapping[str, float]] | None = None,
        step_metrics: StepMetrics | None = None,
        fail_in_round: int = -1,
    ) -> None:
        super().__init__(
            PixelClassifier(),
            PixelClassifier(),
            CONFIG,
            num_classes=NUM_CLASSES,
            image_shape=IMAGE_SHAPE,
            normalization=((0.0,), (1.0,)),
        )
        self.students = dict(students or {})
        self.synth_metrics = dict(synth_metrics or {})
        self.step_metrics = step_metrics or (lambda r, i: {"kd_loss": 1.0})
        self.fail_in_round = fail_in_round
        self.round_index = -1
        self.step_in_round = 0

    def synthesize(self, round_index: int) -> dict[str, float]:
        if round_index == self.fail_in_round:
            raise Interrupted(round_index)
        self.round_index, self.step_in_round = round_index, 0
        self.images_synthesized += 4
        return {
            **self.synth_metrics.get(round_index, {}),
            "images_synthesized": float(self.images_synthesized),
        }

    def distill_step(self) -> dict[str, float]:
        kind = self.students.get(self.round_index)
        if kind is not None:
            weight, bias = _student_state(kind)
            with torch.no_grad():
                self.student.weight.copy_(weight)
                self.student.bias.copy_(bias)
        metrics = {"skipped": 0.0, **self.step_metrics(self.round_index, self.step_in_round)}
        self.step_in_round += 1
        self.kd_steps_done += 1
        return metrics

    def synthetic_images(self) -> torch.Tensor:
        return eval_data(per_class=1)[0]


class Interrupted(RuntimeError):
    """Stands in for a crash in the middle of a run."""

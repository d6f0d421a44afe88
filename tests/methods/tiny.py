"""Tiny BN networks on 8×8 (or 28×28) single-channel images: method steps run in milliseconds."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ssdkd.methods import (
    DEEPINVERSION_DIGITS,
    FAST2_DIGITS,
    SSDKD_DIGITS,
    DistillationFields,
    MethodSpec,
    NoiseControlConfig,
)

NUM_CLASSES = 4
IMAGE_SHAPE = (1, 8, 8)
IMAGE_SHAPE_28 = (1, 28, 28)
NORMALIZATION = ((0.5,), (0.25,))


class TinyNet(nn.Module):
    """conv → BN → ReLU → pool → linear: the smallest net with a BN layer to invert."""

    def __init__(self, num_classes: int = NUM_CLASSES, width: int = 6) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
        )
        self.head = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def make_teacher(seed: int = 0, image_shape: tuple[int, int, int] = IMAGE_SHAPE) -> nn.Module:
    """A random TinyNet whose BN running statistics come from structured inputs."""
    torch.manual_seed(seed)
    teacher = TinyNet()
    teacher.train()
    side = image_shape[-1]
    with torch.no_grad():
        for _ in range(20):
            x = torch.rand(64, *image_shape) * torch.linspace(0, 1, side).view(1, 1, 1, side)
            teacher((x - 0.5) / 0.25)
    return teacher.eval()


def make_student(seed: int = 1) -> nn.Module:
    torch.manual_seed(seed)
    return TinyNet()


def build(
    method_class: type,
    config: object,
    *,
    seed: int = 0,
    image_shape: tuple[int, int, int] = IMAGE_SHAPE,
    **kwargs: object,
) -> object:
    """``method_class`` on a fresh tiny teacher and student, for images of ``image_shape``
    (with 64 random labelled images as ``train_data`` where the method takes real data)."""
    if getattr(method_class, "needs_train_data", False):
        gen = torch.Generator().manual_seed(7)
        kwargs.setdefault(
            "train_data",
            (
                torch.rand(64, *image_shape, generator=gen),
                torch.randint(0, NUM_CLASSES, (64,), generator=gen),
            ),
        )
    return method_class(
        make_teacher(image_shape=image_shape),
        make_student(),
        config,
        num_classes=NUM_CLASSES,
        image_shape=image_shape,
        normalization=NORMALIZATION,
        seed=seed,
        **kwargs,
    )


TINY_BUDGET = {"rounds": 4, "warmup_rounds": 1, "kd_steps": 3, "kd_batch_size": 16}
TINY_SSDKD = dataclasses.replace(
    SSDKD_DIGITS,
    **TINY_BUDGET,
    synthesis_batch_size=16,
    buffer_size=40,
    latent_dim=8,
    generator_width=4,
)
TINY_FAST = dataclasses.replace(
    FAST2_DIGITS, **TINY_BUDGET, synthesis_batch_size=16, latent_dim=8, generator_width=4
)
TINY_DI = dataclasses.replace(
    DEEPINVERSION_DIGITS, **TINY_BUDGET, synthesis_batch_size=16, iterations=5
)
TINY_NOISE = NoiseControlConfig(**TINY_BUDGET, pool_size=64, crop_padding=1, flip=False)

_TINY_FIELDS = {
    **TINY_BUDGET,
    "synthesis_batch_size": 16,
    "buffer_size": 40,
    "latent_dim": 8,
    "generator_width": 4,
    "iterations": 5,
    "pool_size": 64,
    "bank_size": 48,
    "negatives": 8,
    "head_dim": 4,
    "crop_padding": 1,
    "flip": False,
}


_TINY_PER_METHOD: dict[str, dict[str, object]] = {
    "cmi": {"g_steps": 3},
    "nayer": {
        "g_steps": 3,
        "synthesis_batch_size": 20,  # class-balanced: a multiple of the 10 classes
        "embedding_dim": 16,
        "noise_dim": 8,
        "warmup_loops": 2,
        "loops": 1,
        "g_life": 2,
    },
}
"""Fields whose tiny value is a method's own (CMI's 200 synthesis steps a round, NAYER's
class-balanced batches and loops)."""


def tiny_config(spec: MethodSpec) -> DistillationFields:
    """A registered method's config at a budget whose steps run in milliseconds: its
    "digits" preset (its "paper" one where it has none) with the tiny budget's values in
    every field the config has. A method with a costly field this misses adds it here."""
    base = spec.presets.get("digits", spec.default)
    names = {f.name for f in dataclasses.fields(base)}
    tiny = {k: v for k, v in _TINY_FIELDS.items() if k in names}
    return dataclasses.replace(base, **{**tiny, **_TINY_PER_METHOD.get(spec.name, {})})

"""``create_model``: build a model of :mod:`ssdkd.models` by name."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ssdkd.models.lenet import lenet5, lenet5_bn, lenet5_half, lenet5_half_bn
from ssdkd.models.resnet import resnet18, resnet34
from ssdkd.models.small import small_cnn, tiny_cnn
from ssdkd.models.vgg import vgg11_bn
from ssdkd.models.wrn import wrn16_1, wrn16_2, wrn40_1, wrn40_2

__all__ = ["MODELS", "create_model"]

MODELS: dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "wrn16_1": wrn16_1,
    "wrn16_2": wrn16_2,
    "wrn40_1": wrn40_1,
    "wrn40_2": wrn40_2,
    "vgg11_bn": vgg11_bn,
    "small_cnn": small_cnn,
    "tiny_cnn": tiny_cnn,
    "lenet5": lenet5,
    "lenet5_bn": lenet5_bn,
    "lenet5_half": lenet5_half,
    "lenet5_half_bn": lenet5_half_bn,
}
"""Model name → constructor taking ``num_classes``, ``in_channels`` and ``image_size``.

A plain dict: add your own entry to make :func:`create_model` (and the checkpoints of
:func:`ssdkd.engine.teacher.load_teacher`) know another architecture.
"""


def create_model(
    name: str,
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
    seed: int | None = None,
) -> nn.Module:
    """Build the model ``name`` of :data:`MODELS` with freshly initialised weights.

    Every model has BatchNorm layers, takes normalised images
    ``(B, in_channels, image_size, image_size)`` and returns logits ``(B, num_classes)``.

    Args:
        name: A key of :data:`MODELS`.
        num_classes: Number of output logits.
        in_channels: Input image channels.
        image_size: Side of the square input images.
        seed: Initialise the weights from this seed (the same weights on every call and
            machine with the same torch), leaving torch's global random state as it was;
            ``None`` draws them from the global random state, as ``nn.Module`` does.

    Raises:
        ValueError: ``name`` is unknown (the message lists the known names) or an
            argument is not a positive integer.

    Examples:
        >>> model = create_model("tiny_cnn", num_classes=10, in_channels=1, image_size=8)
        >>> type(model).__name__
        'SmallCNN'
        >>> a = create_model("tiny_cnn", in_channels=1, image_size=8, seed=0)
        >>> b = create_model("tiny_cnn", in_channels=1, image_size=8, seed=0)
        >>> all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
        True
    """
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; known models: {', '.join(MODELS)}")
    if seed is None:
        return MODELS[name](num_classes=num_classes, in_channels=in_channels, image_size=image_size)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"Expected `seed` to be an int or None, got {seed!r}")
    # nn.Module initialisers read torch's global generator only: seed a fork of it.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MODELS[name](num_classes=num_classes, in_channels=in_channels, image_size=image_size)

"""CMI: contrastive inversion with a fresh generator per call, a projection head and a
memory bank."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ssdkd.methods import CMI, METHODS
from ssdkd.methods.cmi import random_resized_crop
from ssdkd.models import create_model
from tests.methods.tiny import tiny_config


def _build(channels: int = 1, size: int = 28, **changes: object) -> CMI:
    config = dataclasses.replace(tiny_config(METHODS["cmi"]), **changes)
    shape = {"num_classes": 10, "in_channels": channels, "image_size": size}
    teacher = create_model("small_cnn", **shape, seed=0)
    student = create_model("tiny_cnn", **shape, seed=1)
    return CMI(
        teacher.eval(),
        student,
        config,
        num_classes=10,
        image_shape=(channels, size, size),
        normalization=((0.5,) * channels, (0.25,) * channels),
        seed=0,
    )


@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32)])
def test_a_round_runs_at_28_and_32_pixels(channels: int, size: int) -> None:
    method = _build(channels, size)
    batch = method.config.synthesis_batch_size
    head_before = {k: v.clone() for k, v in method.head.state_dict().items()}
    first = method.synthesize(0)
    assert len(method.bank) == batch
    assert len(method.pool) == batch
    assert first["synth_cr"] == 0.0  # no negative in an empty bank: nothing to tell apart
    second = method.synthesize(1)
    assert len(method.bank) == 2 * batch
    assert len(method.pool) == 2 * batch
    assert second["synth_cr"] > 0.0  # the first batch's views are the negatives
    assert any(not torch.equal(v, method.head.state_dict()[k]) for k, v in head_before.items())
    assert "kd_loss" in method.distill_step()


def test_each_call_starts_from_a_fresh_generator() -> None:
    """The generator is re-initialised per call from the synthesis stream: two calls
    start from different weights, and a rebuilt method repeats the first call exactly."""
    a, b = _build(), _build()
    a.synthesize(0)
    b.synthesize(0)
    assert torch.equal(a.pool.images, b.pool.images)
    a.synthesize(1)
    assert not torch.equal(a.pool.images[:16], a.pool.images[16:32])


def test_the_bank_stores_the_teachers_bn_input_channel_means() -> None:
    method = _build()
    method.synthesize(0)
    features = sum(layer.num_features for layer in method.means.layers)
    assert method.bank.data["global_"].shape == (len(method.bank), features)
    assert method.bank.data["local"].shape == (len(method.bank), features)


def test_random_resized_crop_keeps_the_size_and_is_the_identity_at_scale_1() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    crops = random_resized_crop(x, min_scale=0.25, generator=gen)
    assert crops.shape == x.shape
    crops.sum().backward()
    assert x.grad is not None
    assert float(x.grad.abs().sum()) > 0
    torch.testing.assert_close(random_resized_crop(x, min_scale=1.0), x.detach(), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="`min_scale` in"):
        random_resized_crop(x, min_scale=0.0)


def test_bad_settings_are_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="local_scale"):
        dataclasses.replace(tiny_config(METHODS["cmi"]), local_scale=1.5)
    with pytest.raises(ValueError, match="cr_temperature"):
        dataclasses.replace(tiny_config(METHODS["cmi"]), cr_temperature=0.0)

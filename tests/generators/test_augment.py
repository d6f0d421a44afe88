"""Augmentation: exact transforms, differentiability (gradcheck), reproducibility."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ssdkd.generators import (
    Augment,
    Normalize,
    normalize,
    random_crop,
    random_flip,
    random_mixup,
    random_roll,
)
from tests.syncs import no_host_reads

Transform = Callable[[torch.Tensor], torch.Tensor]


def _seeded(fn: Callable[..., torch.Tensor], *args: object) -> Transform:
    """The transform with a fresh generator of the same seed on every call."""
    return lambda x: fn(x, *args, generator=torch.Generator().manual_seed(7))


TRANSFORMS = {
    "crop": _seeded(random_crop, 2),
    "flip": _seeded(random_flip),
    "roll": _seeded(random_roll, 2),
    "mixup": _seeded(random_mixup),
    "augment": lambda x: Augment(
        crop_padding=1, flip=True, roll=1, mean=(0.5,) * 2, std=(0.3,) * 2
    )(x, generator=torch.Generator().manual_seed(7)),
}


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_gradcheck_float64(name: str) -> None:
    x = torch.rand(3, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(TRANSFORMS[name], (x,))


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_reproducible_under_seed_and_varies_across_seeds(name: str) -> None:
    x = torch.rand(16, 2, 6, 6)
    assert torch.equal(TRANSFORMS[name](x), TRANSFORMS[name](x))
    outputs = {
        random_crop(x, 2, generator=torch.Generator().manual_seed(s)).sum().item() for s in range(5)
    }
    assert len(outputs) > 1


def test_crop_is_a_per_sample_zero_filled_translation() -> None:
    x = torch.rand(32, 1, 5, 5) + 1.0  # strictly positive, so zeros mark the filled border
    out = random_crop(x, 2, generator=torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for sample, image in zip(out, padded, strict=True):
        windows = [image[:, i : i + 5, j : j + 5] for i in range(5) for j in range(5)]
        assert any(torch.equal(sample, w) for w in windows)
    shifts = {tuple((o == 0).nonzero().min(0).values.tolist()) for o in out if (o == 0).any()}
    assert len(shifts) > 1  # offsets differ between samples


def test_flip_mirrors_exactly_the_chosen_samples() -> None:
    x = torch.rand(64, 1, 3, 3)
    out = random_flip(x, generator=torch.Generator().manual_seed(0))
    flipped = [
        torch.equal(o, s.flip(-1)) and not torch.equal(o, s) for o, s in zip(out, x, strict=True)
    ]
    kept = [torch.equal(o, s) for o, s in zip(out, x, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 10 < sum(flipped) < 54
    assert torch.equal(random_flip(x, generator=None, p=0.0), x)


def test_roll_wraps_pixels_around() -> None:
    x = torch.rand(8, 2, 4, 5)
    out = random_roll(x, 3, generator=torch.Generator().manual_seed(1))
    for o, s in zip(out, x, strict=True):
        rolls = [torch.roll(s, (dy, dx), (1, 2)) for dy in range(-3, 4) for dx in range(-3, 4)]
        assert any(torch.equal(o, r) for r in rolls)


def test_mixup_blends_each_image_with_one_partner_keeping_the_larger_share() -> None:
    """Each output is λ·x_i + (1 − λ)·x_j with λ ∈ [0.5, 1], and some image is blended.

    Images with one distinct constant value each make λ and j readable from the output.
    """
    values = torch.arange(1.0, 9.0)
    x = values.view(8, 1, 1, 1).expand(8, 1, 3, 3).contiguous()
    out = random_mixup(x, generator=torch.Generator().manual_seed(3))
    for i, image in enumerate(out):
        assert torch.allclose(image, image.flatten()[0].expand_as(image))  # still constant
        blend = float(image.flatten()[0])
        fits = [
            j
            for j in range(8)
            if 0.5 - 1e-6
            <= (lam := 1.0 if j == i else (blend - values[j]) / (values[i] - values[j]))
            <= 1 + 1e-6
            and abs(lam * values[i] + (1 - lam) * values[j] - blend) < 1e-5
        ]
        assert fits, f"image {i} ({blend}) is no blend with a share >= 0.5 of itself"
    assert any(float(o.flatten()[0]) != v for o, v in zip(out, values, strict=True))


def test_zero_settings_are_identity() -> None:
    x = torch.rand(2, 1, 4, 4)
    assert random_crop(x, 0, generator=None) is x
    assert random_roll(x, 0, generator=None) is x
    assert torch.equal(Augment(crop_padding=0, flip=False)(x), x)


def test_normalize_function_equals_module_and_hand_values() -> None:
    x = torch.rand(2, 3, 4, 4)
    mean, std = (0.1, 0.2, 0.3), (0.5, 1.0, 2.0)
    expected = (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    torch.testing.assert_close(normalize(x, mean, std), expected)
    torch.testing.assert_close(Normalize(mean, std)(x), expected)
    torch.testing.assert_close(Augment(crop_padding=0, flip=False, mean=mean, std=std)(x), expected)


@given(
    batch=st.integers(1, 4),
    size=st.integers(1, 6),
    padding=st.integers(0, 3),
    roll=st.integers(0, 3),
    seed=st.integers(0, 2**31),
)
@pytest.mark.property
def test_augment_keeps_shape_and_range(
    batch: int, size: int, padding: int, roll: int, seed: int
) -> None:
    x = torch.rand(batch, 2, size, size, generator=torch.Generator().manual_seed(seed))
    out = Augment(crop_padding=padding, flip=True, roll=roll)(
        x, generator=torch.Generator().manual_seed(seed)
    )
    assert out.shape == x.shape
    assert out.min() >= 0
    assert out.max() <= 1


def test_invalid_arguments_raise() -> None:
    x = torch.rand(2, 1, 4, 4)
    with pytest.raises(ValueError, match="padding"):
        random_crop(x, -1, generator=None)
    with pytest.raises(ValueError, match="max_shift"):
        random_roll(x, -1, generator=None)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        random_flip(torch.rand(4, 4), generator=None)
    with pytest.raises(ValueError, match="one per channel"):
        normalize(x, (0.5, 0.5), (1.0, 1.0))
    with pytest.raises(ValueError, match="std"):
        normalize(x, (0.5,), (0.0,))
    with pytest.raises(ValueError, match="together"):
        Augment(mean=(0.5,))
    with pytest.raises(ValueError, match="finite"):
        Normalize((math.nan,), (1.0,))
    with pytest.raises(ValueError, match="std"):
        Normalize(0.5, math.inf)
    with pytest.raises(ValueError, match="one per channel"):
        Normalize((0.5, 0.5), (1.0, 1.0))(x)


def test_a_number_is_the_statistic_of_one_channel() -> None:
    x = torch.rand(2, 1, 4, 4)
    torch.testing.assert_close(normalize(x, 0.25, 0.5), (x - 0.25) / 0.5)
    torch.testing.assert_close(Normalize(0.25, 0.5)(x), (x - 0.25) / 0.5)


def test_normalize_module_reads_nothing_back_per_call() -> None:
    """Prevents a host sync per call: ``normalize`` used to check ``bool((std > 0).all())``
    and copy mean/std host → device on every forward of every step."""
    module = Normalize((0.5,), (0.25,))
    x = torch.rand(2, 1, 4, 4)
    module(x)
    with no_host_reads():
        out = module(x)
    torch.testing.assert_close(out, (x - 0.5) / 0.25)

"""total_variation, image_l2 and weighted_mean: known values, loop references, errors."""

from __future__ import annotations

import math

import pytest
import torch

from ssdkd.losses import image_l2, total_variation, weighted_mean


def _images() -> torch.Tensor:
    return torch.rand(3, 2, 4, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_total_variation_known_values() -> None:
    x = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])  # horizontal steps of 1, none vertical
    assert total_variation(x).tolist() == [1.0]
    y = torch.tensor([[[[0.0, 0.0], [3.0, 3.0]]]])  # vertical steps of 3
    assert total_variation(y, p=1).tolist() == [3.0]
    assert total_variation(y, p=2).tolist() == [9.0]
    assert total_variation(torch.ones(2, 3, 4, 4)).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("p", [1, 2])
def test_total_variation_matches_a_loop(p: int) -> None:
    images = _images()
    expected = []
    for img in images:
        c, h, w = img.shape
        dx = [
            abs(img[k, i, j + 1] - img[k, i, j]) ** p
            for k in range(c)
            for i in range(h)
            for j in range(w - 1)
        ]
        dy = [
            abs(img[k, i + 1, j] - img[k, i, j]) ** p
            for k in range(c)
            for i in range(h - 1)
            for j in range(w)
        ]
        expected.append(float(sum(dx)) / len(dx) + float(sum(dy)) / len(dy))
    torch.testing.assert_close(
        total_variation(images, p=p), torch.tensor(expected, dtype=torch.float64)
    )


def test_image_l2_matches_a_loop() -> None:
    images = _images()
    expected = [math.sqrt(sum(v * v for v in img.flatten().tolist())) for img in images]
    torch.testing.assert_close(image_l2(images), torch.tensor(expected, dtype=torch.float64))
    assert image_l2(torch.tensor([[3.0, 4.0]])).tolist() == [5.0]


@pytest.mark.parametrize(
    ("images", "kwargs", "error", "match"),
    [
        (torch.zeros(2, 4, 4), {}, ValueError, r"\(B, C, H, W\) .* got \(2, 4, 4\)"),
        (torch.zeros(2, 1, 1, 4), {}, ValueError, "H >= 2 and W >= 2"),
        (torch.zeros(0, 1, 4, 4), {}, ValueError, "B >= 1"),
        (torch.zeros(1, 1, 4, 4), {"p": 3}, ValueError, "`p` to be 1 or 2, got 3"),
        (torch.zeros(1, 1, 4, 4), {"p": True}, ValueError, "`p` to be 1 or 2, got True"),
        (torch.zeros(1, 1, 4, 4, dtype=torch.uint8), {}, TypeError, "`images` to be a floating"),
        ([[0.0]], {}, TypeError, "`images` to be a torch.Tensor, got list"),
    ],
)
def test_total_variation_invalid(images: object, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        total_variation(images, **kwargs)  # type: ignore[arg-type]


def test_image_l2_invalid() -> None:
    with pytest.raises(ValueError, match=r"`images` to have shape \(B, \.\.\.\) .* got \(3,\)"):
        image_l2(torch.zeros(3))
    with pytest.raises(ValueError, match="B >= 1"):
        image_l2(torch.zeros(0, 3))


def test_weighted_mean_known_values_and_loop() -> None:
    values = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    phi = torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64)
    iw = torch.tensor([0.5, 1.0, 1.0], dtype=torch.float64)
    assert weighted_mean(values, phi).item() == pytest.approx(1.0)  # (1 + 1 + 1) / 3
    assert weighted_mean(values, phi, iw).item() == pytest.approx((0.5 + 1 + 1) / 3)
    assert weighted_mean(values).item() == pytest.approx(7 / 3)
    loop = sum(
        v * a * b for v, a, b in zip(values.tolist(), phi.tolist(), iw.tolist(), strict=True)
    )
    assert weighted_mean(values, phi, iw).item() == pytest.approx(loop / 3)


def test_weighted_mean_divides_by_batch_not_by_weight_sum() -> None:
    values = torch.ones(4)
    assert weighted_mean(values, torch.full((4,), 0.5)).item() == pytest.approx(0.5)


def test_weighted_mean_gradcheck() -> None:
    gen = torch.Generator().manual_seed(0)
    inputs = tuple(
        torch.rand(4, generator=gen, dtype=torch.float64).requires_grad_() for _ in range(3)
    )
    assert torch.autograd.gradcheck(weighted_mean, inputs)


@pytest.mark.parametrize(
    ("values", "weights", "error", "match"),
    [
        (torch.zeros(2, 1), (), ValueError, r"`values` to have shape \(B,\) .* got \(2, 1\)"),
        (torch.zeros(0), (), ValueError, "B >= 1"),
        (torch.zeros(3), (torch.zeros(2),), ValueError, r"`weights\[0\]` to have shape \(3,\)"),
        (torch.zeros(3), (torch.ones(3), torch.ones(3, 1)), ValueError, r"`weights\[1\]`"),
        (torch.zeros(3), ([1, 2, 3],), TypeError, r"`weights\[0\]` to be a torch.Tensor"),
        (torch.zeros(3, dtype=torch.long), (), TypeError, "`values` to be a floating"),
    ],
)
def test_weighted_mean_invalid(values: object, weights: tuple, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        weighted_mean(values, *weights)  # type: ignore[arg-type]

"""DCGANGenerator and PixelGenerator: shapes, value ranges, argument checks, reset."""

from __future__ import annotations

import pytest
import torch

from ssdkd.generators import DCGANGenerator, PixelGenerator


@pytest.mark.parametrize("image_size", [4, 8, 28, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_output_shape_and_range(image_size: int, channels: int) -> None:
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=16, image_size=image_size, channels=channels, width=8)
    images = g(torch.randn(3, 16) * 10)
    assert images.shape == (3, channels, image_size, image_size)
    assert images.min() >= 0
    assert images.max() <= 1
    assert g.latent_dim == 16


def test_dcgan_default_is_the_published_architecture() -> None:
    g = DCGANGenerator()
    convs = [m for m in g.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(128, 128), (128, 64), (64, 3)]
    assert g.project.in_features == 256
    assert g.project.out_features == 128 * 8 * 8
    assert g(torch.randn(2, 256)).shape == (2, 3, 32, 32)


def test_dcgan_width_sets_channels() -> None:
    g = DCGANGenerator(latent_dim=8, image_size=8, channels=1, width=5)
    convs = [m for m in g.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(10, 10), (10, 5), (5, 1)]


@pytest.mark.parametrize("image_size", [0, 6, 30, -4])
def test_dcgan_rejects_sizes_not_multiple_of_four(image_size: int) -> None:
    with pytest.raises(ValueError, match="image_size"):
        DCGANGenerator(image_size=image_size)


def test_dcgan_rejects_wrong_latent_shape() -> None:
    g = DCGANGenerator(latent_dim=8, image_size=8, channels=1, width=4)
    with pytest.raises(ValueError, match=r"\(B, 8\)"):
        g(torch.randn(2, 9))


def test_dcgan_is_differentiable_in_z() -> None:
    g = DCGANGenerator(latent_dim=8, image_size=8, channels=1, width=4)
    z = torch.randn(2, 8, requires_grad=True)
    g(z).sum().backward()
    assert z.grad is not None
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("image_size", [8, 28, 32])
def test_pixel_generator_shape_range_and_parameter(image_size: int) -> None:
    pixels = PixelGenerator(4, 3, image_size, generator=torch.Generator().manual_seed(0))
    images = pixels()
    assert images.shape == (4, 3, image_size, image_size)
    assert images.min() >= 0
    assert images.max() <= 1
    assert [p.shape for p in pixels.parameters()] == [images.shape]
    assert torch.allclose(images, torch.sigmoid(pixels.logits))


def test_pixel_generator_is_reproducible_and_reset_redraws_in_place() -> None:
    a = PixelGenerator(2, 1, 8, generator=torch.Generator().manual_seed(3))
    b = PixelGenerator(2, 1, 8, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a(), b())
    parameter = a.logits
    before = a().detach().clone()
    a.reset(torch.Generator().manual_seed(4))
    assert a.logits is parameter
    assert not torch.equal(a(), before)
    b.reset(torch.Generator().manual_seed(4))
    assert torch.equal(a(), b())


def test_pixel_generator_optimises_towards_a_target() -> None:
    pixels = PixelGenerator(1, 1, 4, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(pixels.parameters(), lr=0.1)
    for _ in range(200):
        loss = (pixels() - 0.9).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.allclose(pixels(), torch.full((1, 1, 4, 4), 0.9), atol=1e-2)


@pytest.mark.parametrize("args", [(0, 1, 8), (1, 0, 8), (1, 1, 0)])
def test_pixel_generator_rejects_non_positive_sizes(args: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError, match="positive"):
        PixelGenerator(*args)


def test_conditional_generator_images_depend_on_the_labels() -> None:
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=8, image_size=8, channels=1, width=4, num_classes=3).eval()
    z = torch.randn(2, 8)
    same = g(z, torch.tensor([0, 0]))
    other = g(z, torch.tensor([0, 2]))
    assert torch.equal(same[0], other[0])
    assert not torch.allclose(same[1], other[1])


def test_conditional_generator_requires_labels_and_unconditional_refuses_them() -> None:
    conditional = DCGANGenerator(latent_dim=8, image_size=8, channels=1, width=4, num_classes=3)
    with pytest.raises(ValueError, match="`labels` as \\(2,\\) integer classes"):
        conditional(torch.randn(2, 8))
    with pytest.raises(ValueError, match="`labels`"):
        conditional(torch.randn(2, 8), torch.tensor([0.0, 1.0]))
    plain = DCGANGenerator(latent_dim=8, image_size=8, channels=1, width=4)
    with pytest.raises(ValueError, match="no `labels` for an unconditional"):
        plain(torch.randn(2, 8), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="`num_classes`"):
        DCGANGenerator(num_classes=-1)

"""The DCGAN-style generator of Fast-DFKD and CMI."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DCGANGenerator"]


class DCGANGenerator(nn.Module):
    """Maps latent codes to images in [0, 1] (Fast-DFKD / CMI architecture).

    ``Linear(latent_dim → 2w·(S/4)²) → BN → ×2 upsample → conv3×3 2w→2w → BN → LeakyReLU(0.2)
    → ×2 upsample → conv3×3 2w→w → BN → LeakyReLU(0.2) → conv3×3 w→C → sigmoid``, with
    ``w = width`` and ``S = image_size``; the published generator has ``width=64``
    (128 and 64 channels). Upsampling is nearest-neighbour.

    With ``num_classes`` the generator is class-conditional: ``forward(z, labels)`` adds a
    learned code per class (an ``nn.Embedding``, initialised N(0, 1) like z) to z. The
    published generator takes ``z`` alone; a conditional one can learn to produce the class
    it is asked for, so a batch drawn with uniform labels stays class-balanced (see
    ``docs/concepts/ssd-kd.md``).

    Args:
        latent_dim: Size of the latent code ``z``.
        image_size: Side ``S`` of the square output, a positive multiple of 4 (8, 28, 32…).
        channels: Image channels ``C``.
        width: Channel width ``w`` of the last hidden convolution.
        num_classes: Number of classes of a conditional generator (0: unconditional).

    Examples:
        >>> g = DCGANGenerator(latent_dim=16, image_size=8, channels=1, width=4)
        >>> g(torch.randn(2, 16)).shape
        torch.Size([2, 1, 8, 8])
        >>> c = DCGANGenerator(latent_dim=16, image_size=8, channels=1, width=4, num_classes=3)
        >>> c(torch.randn(2, 16), torch.tensor([0, 2])).shape
        torch.Size([2, 1, 8, 8])
    """

    def __init__(
        self,
        latent_dim: int = 256,
        image_size: int = 32,
        channels: int = 3,
        width: int = 64,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(
                f"Expected `num_classes` to be an integer >= 0 (0: unconditional), "
                f"got {num_classes!r}"
            )
        for name, value in (("latent_dim", latent_dim), ("channels", channels), ("width", width)):
            if value < 1:
                raise ValueError(f"Expected `{name}` to be a positive integer, got {value}")
        if image_size < 4 or image_size % 4:
            raise ValueError(
                f"Expected `image_size` to be a positive multiple of 4, got {image_size}"
            )
        self.latent_dim = latent_dim
        self.image_size = image_size
        self.channels = channels
        self.num_classes = num_classes
        self.init_size = image_size // 4
        wide = 2 * width
        self.project = nn.Linear(latent_dim, wide * self.init_size**2)
        # A class code per label, added to z. N(0, 1) entries give each class a code as
        # long as z itself, so the label is visible from the first step on.
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        self.blocks = nn.Sequential(
            nn.BatchNorm2d(wide),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(wide, wide, 3, padding=1, bias=False),
            nn.BatchNorm2d(wide),
            nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(wide, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, channels, 3, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images ``(B, C, S, S)`` in [0, 1] from latent codes ``z`` ``(B, latent_dim)``.

        Args:
            z: ``(B, latent_dim)`` latent codes.
            labels: ``(B,)`` integer classes in ``[0, num_classes)``; required by a
                conditional generator and refused by an unconditional one.
        """
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"Expected `z` of shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        if self.num_classes:
            if labels is None or labels.shape != (z.shape[0],) or labels.is_floating_point():
                got = None if labels is None else f"{labels.dtype} {tuple(labels.shape)}"
                raise ValueError(
                    f"Expected `labels` as ({z.shape[0]},) integer classes for a conditional "
                    f"generator of {self.num_classes} classes, got {got}"
                )
            assert self.embed is not None
            z = z + self.embed(labels)
        elif labels is not None:
            raise ValueError(
                "Expected no `labels` for an unconditional generator (num_classes=0), got a "
                "tensor; build it with num_classes > 0 to condition on classes"
            )
        features = self.project(z).view(z.shape[0], -1, self.init_size, self.init_size)
        return self.blocks(features)

"""DeepInversion's parameterisation: the images themselves are the parameters."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PixelGenerator"]


class PixelGenerator(nn.Module):
    """A batch of images optimised directly, as in DeepInversion.

    The parameter is the pre-sigmoid ``logits`` tensor ``(B, C, S, S)`` and
    :meth:`forward` returns ``sigmoid(logits)``, so the images always lie in [0, 1] and
    feed the same augmentation and normalisation as :class:`DCGANGenerator` — no clamping
    step is needed after each optimiser step (DeepInversion optimised raw normalised
    pixels and clipped them; the sigmoid is ssdkd's choice). ``logits`` start as
    standard normal noise, i.e. images spread around grey 0.5.

    Args:
        batch_size: Number of images ``B``.
        channels: Channels ``C``.
        image_size: Side ``S`` of the square images.
        generator: Random source of the initial noise (``None``: the global generator);
            the parameter is created on the generator's device.

    Examples:
        >>> pixels = PixelGenerator(2, 1, 8, generator=torch.Generator().manual_seed(0))
        >>> images = pixels()
        >>> images.shape, bool(images.min() >= 0), bool(images.max() <= 1)
        (torch.Size([2, 1, 8, 8]), True, True)
    """

    def __init__(
        self,
        batch_size: int,
        channels: int,
        image_size: int,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        for name, value in (
            ("batch_size", batch_size),
            ("channels", channels),
            ("image_size", image_size),
        ):
            if value < 1:
                raise ValueError(f"Expected `{name}` to be a positive integer, got {value}")
        device = generator.device if generator is not None else None
        shape = (batch_size, channels, image_size, image_size)
        self.logits = nn.Parameter(torch.randn(shape, generator=generator, device=device))

    def reset(self, generator: torch.Generator | None = None) -> None:
        """Redraw ``logits`` from N(0, 1) in place (the optimiser keeps its parameter)."""
        source = generator.device if generator is not None else self.logits.device
        noise = torch.randn(self.logits.shape, generator=generator, device=source)
        with torch.no_grad():
            self.logits.copy_(noise)

    def forward(self) -> torch.Tensor:
        """The images ``sigmoid(logits)``, ``(B, C, S, S)`` in [0, 1]."""
        return torch.sigmoid(self.logits)

"""The noise control: the same KD on uniform-noise images."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ssdkd.methods.base import PoolMethod
from ssdkd.methods.config import NoiseControlConfig

__all__ = ["NoiseControl"]


class NoiseControl(PoolMethod):
    """Distils on ``pool_size`` uniform-noise images drawn in the first round.

    With several processes each rank draws and keeps ``pool_size / N`` of the images
    (``pool_size`` must be divisible by the number of processes).

    The control every data-free method must beat by a wide margin: it shows how much of
    the teacher's function can be transferred without inverting anything.

    See :class:`~ssdkd.methods.base.DistillationMethod` for the arguments.
    """

    needs_batchnorm: ClassVar[bool] = False
    config: NoiseControlConfig

    def __init__(
        self, teacher: nn.Module, student: nn.Module, config: NoiseControlConfig, **kwargs: Any
    ) -> None:
        if not isinstance(config, NoiseControlConfig):
            raise TypeError(
                f"Expected `config` to be a NoiseControlConfig, got {type(config).__name__}"
            )
        super().__init__(teacher, student, config, **kwargs)
        self.pool_share = self.parallel.share(config.pool_size, "pool_size")

    def synthesize(self, round_index: int) -> dict[str, float]:
        if len(self.pool) == 0:
            noise = torch.rand(
                self.pool_share,
                *self.image_shape,
                generator=self.generator,
                device=self.device,
            )
            with torch.no_grad(), self.precision.autocast():
                logits = self.teacher(self.model_input(noise)).float()
            return self._add_to_pool(noise, logits)
        return {"images_synthesized": float(self.images_synthesized)}

"""The noise control: the same KD on uniform-noise images; its config and method."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ssdkd.methods.base import MethodSpec, PoolMethod
from ssdkd.methods.config import DistillationFields, MethodConfig, check_positive

__all__ = ["SPEC", "NoiseControl", "NoiseControlConfig", "noise_control_for"]


@dataclass(frozen=True)
class NoiseControlConfig(DistillationFields):
    """The sanity control: distil on uniform-noise images instead of inverted ones.

    A data-free method that does not beat this control by a wide margin is not working.
    """

    pool_size: int = 5000
    """Noise images drawn once at the start."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "pool_size")


def noise_control_for(config: MethodConfig, pool_size: int) -> NoiseControlConfig:
    """The noise control with the same KD budget and student settings as ``config``.

    Examples:
        >>> from ssdkd.methods import SSDKD_PAPER
        >>> noise_control_for(SSDKD_PAPER, 5000).kd_steps
        100
    """
    shared = {f.name: getattr(config, f.name) for f in dataclasses.fields(DistillationFields)}
    return NoiseControlConfig(**shared, pool_size=pool_size)


class NoiseControl(PoolMethod):
    """Distils on ``pool_size`` uniform-noise images drawn in the first round.

    With several processes each rank draws and keeps ``pool_size / N`` of the images
    (``pool_size`` must be divisible by the number of processes).

    The control every data-free method must beat by a wide margin: it shows how much of
    the teacher's function can be transferred without inverting anything.

    See :class:`~ssdkd.methods.base.DistillationMethod` for the arguments.
    """

    needs_batchnorm: ClassVar[bool] = False
    config_class = NoiseControlConfig
    config: NoiseControlConfig

    def __init__(
        self, teacher: nn.Module, student: nn.Module, config: NoiseControlConfig, **kwargs: Any
    ) -> None:
        super().__init__(teacher, student, config, **kwargs)
        self.pool_share = self.parallel.share(config.pool_size, "pool_size")

    def synthesize(self, round_index: int) -> dict[str, float]:
        if len(self.pool) == 0:
            noise = torch.rand(
                self.pool_share,
                *self.image_shape,
                generator=self.streams.synthesis,
                device=self.device,
            )
            with torch.no_grad(), self.precision.autocast():
                logits = self.teacher(self.model_input(noise)).float()
            return self._add_to_pool(noise, logits)
        return {"images_synthesized": float(self.images_synthesized)}


SPEC = MethodSpec(
    name="noise-control",
    method_class=NoiseControl,
    presets={"paper": NoiseControlConfig()},
    summary="the sanity control: the same KD on uniform-noise images",
)
"""The noise control in the registry."""

"""Fast-DFKD: meta-learned generator, growing transfer pool, uniform KD."""

from __future__ import annotations

from typing import Any

from torch import nn

from ssdkd.methods.base import PoolMethod
from ssdkd.methods.config import FastDFKDConfig
from ssdkd.methods.meta_synthesis import MetaGeneratorSynthesis

__all__ = ["FastDFKD"]


class FastDFKD(PoolMethod):
    """Fast-DFKD (Fang et al., AAAI 2022).

    Each round runs one :class:`~ssdkd.methods.meta_synthesis.MetaGeneratorSynthesis`
    round (no adversarial term during warm-up) and appends the best batch to the transfer
    pool; each KD step draws a batch uniformly from the whole pool.

    See :class:`~ssdkd.methods.base.DistillationMethod` for the arguments.

    Example:
        >>> from ssdkd.methods.config import FAST2_DIGITS
        >>> from ssdkd.models import create_model
        >>> teacher = create_model("tiny_cnn", num_classes=10, in_channels=1, image_size=8)
        >>> student = create_model("tiny_cnn", num_classes=10, in_channels=1, image_size=8)
        >>> method = FastDFKD(teacher, student, FAST2_DIGITS, num_classes=10,
        ...                   image_shape=(1, 8, 8), normalization=((0.3,), (0.4,)))
        >>> metrics = method.synthesize(0)
        >>> metrics["images_synthesized"], 0.0 <= metrics["data_class_entropy"] <= 1.0
        (128.0, True)
        >>> method.synthetic_images().shape
        torch.Size([128, 1, 8, 8])
        >>> "kd_loss" in method.distill_step()
        True
    """

    config: FastDFKDConfig

    def __init__(
        self, teacher: nn.Module, student: nn.Module, config: FastDFKDConfig, **kwargs: Any
    ) -> None:
        if not isinstance(config, FastDFKDConfig):
            raise TypeError(
                f"Expected `config` to be a FastDFKDConfig, got {type(config).__name__}"
            )
        super().__init__(teacher, student, config, pool_capacity=config.pool_capacity, **kwargs)
        self.synthesis = MetaGeneratorSynthesis.for_method(self, config)

    def synthesize(self, round_index: int) -> dict[str, float]:
        if not self.config.synthesizes(round_index):
            return self._pool_metrics()
        out = self.synthesis.run(adversarial=round_index >= self.config.warmup_rounds)
        return {**out.metrics, **self._add_to_pool(out.images, out.teacher_logits)}

    def _extra_state(self) -> dict[str, Any]:
        return {**super()._extra_state(), "synthesis": self.synthesis.state_dict()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        super()._load_extra_state(state)
        self.synthesis.load_state_dict(state["synthesis"])

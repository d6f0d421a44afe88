"""DFQ (Choi et al., CVPRW 2020): its config, presets and method.

The generator family's full frame: BN statistics, one-hot, adversarial KL and class
balance; the student learns KL(teacher ‖ student).
"""

from __future__ import annotations

from dataclasses import dataclass

from ssdkd.methods.base import MethodSpec
from ssdkd.methods.generator_family import GeneratorFamily, GeneratorFamilyFields

__all__ = ["DFQ", "DFQ_PAPER", "SPEC", "DFQConfig"]


@dataclass(frozen=True)
class DFQConfig(GeneratorFamilyFields):
    """DFQ. The defaults are the loss weights of the widely used CIFAR re-implementation
    (bn 1, one-hot 1, adversarial 1, balance 20, 10 student steps per generator step,
    generator Adam 1e-3, student SGD 0.1 with a cosine schedule).

    The run's length (200 epochs × 50 iterations) is not published with those weights;
    it is the generator family's CIFAR scale. The student's KL runs at ``temperature``
    (1, what those scripts run whatever their ``--T`` says).
    """

    rounds: int = 200
    iterations: int = 50
    kd_steps: int = 10
    bn_weight: float = 1.0
    oh_weight: float = 1.0
    adv_weight: float = 1.0
    balance_weight: float = 20.0


DFQ_PAPER = DFQConfig()
"""The CIFAR weights of the re-implementation (see :class:`DFQConfig`)."""


class DFQ(GeneratorFamily):
    """DFQ: the generator family with BN, one-hot, adversarial and balance terms; the BN
    term needs BatchNorm layers in the teacher."""

    config_class = DFQConfig
    config: DFQConfig
    needs_batchnorm = True


SPEC = MethodSpec(
    name="dfq",
    method_class=DFQ,
    presets={"paper": DFQ_PAPER},
    summary="DFQ (CVPRW 2020): a generator matched to BN statistics, adversarial and balanced",
)
"""DFQ in the registry."""

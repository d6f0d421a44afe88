"""DFQ (Choi et al., CVPRW 2020): its config, presets and method.

The generator family's full frame: BN statistics, one-hot, adversarial KL and class
balance; the student learns KL(teacher ‖ student).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ssdkd.methods.base import MethodSpec
from ssdkd.methods.generator_family import GeneratorFamily, GeneratorFamilyFields

__all__ = ["DFQ", "DFQ_FASHION_MNIST", "DFQ_PAPER", "SPEC", "DFQConfig"]


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
DFQ_FASHION_MNIST = dataclasses.replace(
    DFQ_PAPER,
    rounds=16,
    iterations=30,
    synthesis_batch_size=128,
    kd_batch_size=128,
    student_lr=0.01,
    generator_width=32,
)
"""DFQ at 28×28: 16 rounds of 30 iterations (480 generator steps, 4,800 student steps on
batches of 128), student SGD 0.01 (the rate of the library's other 28×28 presets; at 0.05
and 0.2 their student fitted no synthetic pool), a generator of width 32 (a quarter of
the convolution work: 10 minutes on 2 CPU cores); the loss weights, T = 1 and the 10
student steps per generator step as :data:`DFQ_PAPER`. Chosen on a validation split
(82.5% there)."""


class DFQ(GeneratorFamily):
    """DFQ: the generator family with BN, one-hot, adversarial and balance terms; the BN
    term needs BatchNorm layers in the teacher."""

    config_class = DFQConfig
    config: DFQConfig
    needs_batchnorm = True


SPEC = MethodSpec(
    name="dfq",
    method_class=DFQ,
    presets={"paper": DFQ_PAPER, "fashion-mnist": DFQ_FASHION_MNIST},
    summary="DFQ (CVPRW 2020): a generator matched to BN statistics, adversarial and balanced",
)
"""DFQ in the registry."""

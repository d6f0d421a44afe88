"""ZSKT (Micaelli & Storkey, NeurIPS 2019): its config, presets and method.

An adversarial generator makes images on which student and teacher disagree most
(−KL(p_T ‖ p_S)); the student then takes several steps on the same images, on KL plus
β times the attention-transfer term between matching blocks of the two networks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from ssdkd.hooks import FeatureHook
from ssdkd.losses import attention_transfer, kd_kl_div
from ssdkd.methods.base import MethodSpec
from ssdkd.methods.generator_family import GeneratorFamily, GeneratorFamilyFields
from ssdkd.methods.student import StudentLoss

__all__ = ["SPEC", "ZSKT", "ZSKT_FASHION_MNIST", "ZSKT_PAPER", "ZSKTConfig", "matching_blocks"]


@dataclass(frozen=True)
class ZSKTConfig(GeneratorFamilyFields):
    """ZSKT. The defaults are the paper's CIFAR-10 settings (WRN-16-2 → WRN-16-1):
    80,000 iterations (80 rounds × 1,000) of one generator step and 10 student steps on
    the same 128 images, latent 100, Adam for both (student 2e-3, generator 1e-3), β 250.

    Both learning rates are annealed with a cosine, as in the paper. Departures from the
    paper: gradients are not clipped (the paper: norm 5), and the KL is summed over
    classes and averaged over the batch (the paper's code averaged over batch × classes,
    K times smaller).
    """

    rounds: int = 80
    iterations: int = 1000
    kd_steps: int = 10
    synthesis_batch_size: int = 128
    kd_batch_size: int = 128
    latent_dim: int = 100
    lr_g: float = 1e-3
    lr_g_schedule: Literal["constant", "cosine"] = "cosine"
    student_optimizer: Literal["sgd", "adam"] = "adam"
    student_lr: float = 2e-3
    student_weight_decay: float = 0.0
    adv_weight: float = 1.0
    student_images: Literal["fresh", "same"] = "same"
    attention_weight: float = 250.0
    """β: weight of the attention-transfer term in the student's loss (0: KL alone)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.attention_weight >= 0:
            raise ValueError(
                f"Expected `attention_weight` to be >= 0, got {self.attention_weight!r}"
            )


ZSKT_PAPER = ZSKTConfig()
"""The paper's CIFAR-10 setting (see :class:`ZSKTConfig`)."""
ZSKT_FASHION_MNIST = dataclasses.replace(ZSKT_PAPER, rounds=30, iterations=30, generator_width=32)
"""ZSKT at 28×28: 30 rounds of 30 iterations (900 generator steps, 9,000 student steps on
batches of 128) with both rates annealed over them, a generator of width 32 (a quarter
of the convolution work: 11 minutes on 2 CPU cores); every other field as
:data:`ZSKT_PAPER`. Chosen on a validation split (78.0% there; 40 rounds reached 78.5%
in 25 minutes)."""


def matching_blocks(
    student: nn.Module, teacher: nn.Module, image_shape: tuple[int, int, int]
) -> tuple[list[str], list[str]]:
    """Names of the student's and the teacher's block outputs to compare, one pair per
    spatial size that both networks produce.

    A block's output at a size is the output of the shallowest module (fewest levels of
    nesting) producing that size, the last of them to finish where several do: for a
    ResNet or WRN the group of blocks (for a pre-activation WRN's last size, its final
    BatchNorm); for a plain stack, the last module producing the size, a pooling layer
    included (for LeNet-5 the pools' outputs, and the 1×1 map of its last convolution,
    whose attention map is constant and adds nothing to the loss). Found by one
    forward pass of a 2-image zero batch in eval mode without gradients; the networks'
    modes are restored.

    Raises:
        ValueError: The two networks share no spatial size of a 4-D output.
    """

    def last_per_size(model: nn.Module) -> dict[tuple[int, int], str]:
        found: dict[tuple[int, int], tuple[int, str]] = {}
        handles = []
        for name, module in model.named_modules():
            if not name:
                continue

            def hook(module: nn.Module, args: Any, output: Any, name: str = name) -> None:
                if isinstance(output, torch.Tensor) and output.dim() == 4:
                    size, depth = (int(output.shape[2]), int(output.shape[3])), name.count(".")
                    if size not in found or depth <= found[size][0]:
                        found[size] = (depth, name)

            handles.append(module.register_forward_hook(hook))
        was_training = model.training
        device = next(model.parameters()).device
        try:
            model.eval()
            with torch.no_grad():
                model(torch.zeros(2, *image_shape, device=device))
        finally:
            model.train(was_training)
            for handle in handles:
                handle.remove()
        return {size: name for size, (_, name) in found.items()}

    student_blocks, teacher_blocks = last_per_size(student), last_per_size(teacher)
    sizes = [size for size in student_blocks if size in teacher_blocks]
    if not sizes:
        raise ValueError(
            "Expected the student and the teacher to share a spatial size of a block "
            f"output for attention transfer, got {sorted(student_blocks)} and "
            f"{sorted(teacher_blocks)}"
        )
    return [student_blocks[s] for s in sizes], [teacher_blocks[s] for s in sizes]


class ZSKT(GeneratorFamily):
    """ZSKT: the generator family with the adversarial KL alone; the student learns
    KL at ``temperature`` plus ``attention_weight`` × :func:`~ssdkd.losses.attention_transfer`
    between :func:`matching_blocks`. The teacher needs no BatchNorm layers."""

    config_class = ZSKTConfig
    config: ZSKTConfig
    needs_batchnorm = False

    def __init__(self, teacher: nn.Module, student: nn.Module, config: Any, **kwargs: Any) -> None:
        self._hooks: tuple[FeatureHook, FeatureHook] | None = None
        super().__init__(teacher, student, config, **kwargs)
        self.attention_blocks = matching_blocks(self.student, self.teacher, self.image_shape)
        """(student, teacher) module names whose outputs the attention term compares."""

    def student_loss(self) -> StudentLoss:
        """KL(teacher ‖ student)·T² plus β × attention transfer of the current batch."""
        temperature, beta = self.config.temperature, self.config.attention_weight

        def loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
            kd = kd_kl_div(student_logits, teacher_logits, temperature=temperature)
            if beta == 0 or self._hooks is None:
                return kd
            student_hook, teacher_hook = self._hooks
            student_names, teacher_names = self.attention_blocks
            attention = attention_transfer(
                [student_hook.features[n] for n in student_names],
                [teacher_hook.features[n] for n in teacher_names],
            )
            return kd + beta * attention.to(kd.dtype)

        return loss

    def distill_step(self) -> dict[str, torch.Tensor | float]:
        student_names, teacher_names = self.attention_blocks
        with (
            FeatureHook(self.student, student_names) as student_hook,
            FeatureHook(self.teacher, teacher_names) as teacher_hook,
        ):
            self._hooks = (student_hook, teacher_hook)
            try:
                return super().distill_step()
            finally:
                self._hooks = None


SPEC = MethodSpec(
    name="zskt",
    method_class=ZSKT,
    presets={"paper": ZSKT_PAPER, "fashion-mnist": ZSKT_FASHION_MNIST},
    summary="ZSKT (NeurIPS 2019): an adversarial generator; KD plus attention transfer",
)
"""ZSKT in the registry."""

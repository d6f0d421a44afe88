"""The inversion inner loop every synthesiser shares: make images, run the frozen teacher
under the BN-statistics hook, step on the method's objective, keep the best iterate."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ssdkd.generators import Augment
from ssdkd.hooks import BNLayerStats, BNStatsHook
from ssdkd.methods.precision import Precision

__all__ = ["InversionObjective", "InversionResult", "invert"]

InversionObjective = Callable[[Tensor, Tensor, Tensor, list[BNLayerStats]], tuple[Tensor, Tensor]]
"""Maps (images in [0, 1], the networks' inputs, the teacher's float logits, the teacher's
BN statistics of this step) to (the scalar loss to minimise, a 1-D tensor of its parts to
report, e.g. ``stack([loss, bn, task])``)."""


@dataclass(frozen=True)
class InversionResult:
    """What :func:`invert` leaves; every tensor stays on the device (no host read)."""

    best_images: Tensor
    """The images of the applied step with the lowest loss (zeros if none was applied)."""
    best_parts: Tensor
    """The parts of that step (NaN if none was applied)."""
    last_images: Tensor
    """The images of the last step, applied or not."""
    last_parts: Tensor
    """The parts of the last applied step (NaN if none was applied)."""
    last_stats: list[BNLayerStats]
    """The teacher's BN statistics of the last applied step (of the first step if none
    was), detached; empty unless ``track_stats``."""
    skipped: Tensor
    """0-dim int64: how many steps were skipped (a non-finite loss or gradient)."""


def invert(
    steps: int,
    images: Callable[[], Tensor],
    objective: InversionObjective,
    optimizer: torch.optim.Optimizer,
    *,
    teacher: nn.Module,
    model_input: Callable[[Tensor], Tensor],
    augment: Augment,
    generator: torch.Generator,
    precision: Precision,
    step_precision: Precision,
    before_update: Callable[[], None] | None = None,
    track_stats: bool = False,
    student: nn.Module | None = None,
) -> InversionResult:
    """Run ``steps`` optimisation steps of an inversion, without a host read.

    Each step makes ``images()``, augments them with ``generator`` and maps them to the
    networks' input, runs ``teacher`` in ``precision`` under a
    :class:`~ssdkd.hooks.BNStatsHook`, evaluates ``objective`` and takes a guarded step
    of ``optimizer`` through ``step_precision`` (the synthesis's own instance: its fp16
    gradient scale is not the student's). A skipped step changes nothing and is never the
    kept iterate.

    Args:
        steps: Number of steps, ≥ 1.
        images: Makes the current images ``(B, C, H, W)`` in [0, 1] from what
            ``optimizer`` optimises (a generator's output, or the pixels themselves).
        objective: See :data:`InversionObjective`.
        optimizer: The optimiser of the images' parameters (generator weights, latents,
            pixels).
        teacher: The frozen teacher (eval mode).
        model_input: Images → the networks' input (normalisation).
        augment: The random augmentation of every step (crop, flip, roll).
        generator: The random source of ``augment``.
        precision: Autocast mode of the forward passes.
        step_precision: The guarded update's precision (with its own gradient scaler).
        before_update: Passed to :meth:`Precision.step <ssdkd.methods.Precision.step>`,
            e.g. first-order MAML's gradient accumulation.
        track_stats: Keep the BN statistics of the last applied step (the
            BN-statistics EMA of the meta generator needs them).
        student: The student an objective's adversarial or competition term runs: in
            eval mode for the duration (its BN statistics must not move), then back in
            the mode it had.

    Returns:
        An :class:`InversionResult`.
    """
    with _eval_mode(student):
        device = generator.device
        best_loss = torch.tensor(float("inf"), device=device)
        best_images = torch.zeros(0, device=device)
        best_parts: Tensor | None = None
        last_parts: Tensor | None = None
        last_stats: list[BNLayerStats] = []
        skipped = torch.zeros((), dtype=torch.int64, device=device)
        batch = torch.zeros(0, device=device)
        for _ in range(steps):
            batch = images()
            inputs = model_input(augment(batch, generator=generator))
            with BNStatsHook(teacher) as recorder:
                with precision.autocast():
                    teacher_logits = teacher(inputs).float()
                stats = recorder.stats
            loss, parts = objective(batch, inputs, teacher_logits, stats)
            applied = step_precision.step(loss, optimizer, before_update=before_update)
            skipped = skipped + (~applied).long()
            if track_stats:
                last_stats = _where_stats(applied, stats, last_stats)
            parts = parts.detach()
            if best_parts is None or last_parts is None:
                best_parts = torch.full_like(parts, float("nan"))
                last_parts = torch.full_like(parts, float("nan"))
            last_parts = torch.where(applied, parts, last_parts)
            # Keep the lowest-loss applied batch (NaN never compares lower).
            better = applied & (loss.detach() < best_loss)
            if best_images.numel() == 0:
                best_images = torch.zeros_like(batch.detach())
            best_images = torch.where(better, batch.detach(), best_images)
            best_parts = torch.where(better, parts, best_parts)
            best_loss = torch.where(better, loss.detach(), best_loss)
        assert best_parts is not None
        assert last_parts is not None
        return InversionResult(
            best_images=best_images,
            best_parts=best_parts,
            last_images=batch.detach(),
            last_parts=last_parts,
            last_stats=last_stats,
            skipped=skipped,
        )


@contextlib.contextmanager
def _eval_mode(module: nn.Module | None) -> Iterator[None]:
    """``module`` in eval mode for the block, then back in the mode it had."""
    if module is None:
        yield
        return
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def _where_stats(
    applied: Tensor, stats: list[BNLayerStats], previous: list[BNLayerStats]
) -> list[BNLayerStats]:
    """``stats`` (detached) where ``applied``, else ``previous`` (the first step's stats)."""
    if not previous:
        previous = stats
    return [
        BNLayerStats(
            s.name,
            torch.where(applied, s.mean.detach(), p.mean.detach()),
            torch.where(applied, s.var.detach(), p.var.detach()),
            s.running_mean,
            s.running_var,
        )
        for s, p in zip(stats, previous, strict=True)
    ]

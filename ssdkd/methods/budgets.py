"""Settings every small-data preset shares: scikit-learn digits (8×8) and 28×28 grey images.

The published budgets are for CIFAR on GPUs. The presets of each method (in the method's
module) start from these dicts and keep the method's published loss weights and learning
rates unless a comment there says otherwise; the calibration record
(``docs/notes/2026-12-05-benchmarks-history.md``) has the measurements behind each
departure.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DIGITS_BUDGET", "FASHION_BUDGET", "FASHION_GENERATOR"]

DIGITS_BUDGET: dict[str, Any] = {
    "rounds": 30,
    "warmup_rounds": 5,
    "kd_batch_size": 128,
    "temperature": 4.0,
    "student_lr": 0.05,
    "crop_padding": 1,
    "flip": False,
}
"""Digits are 8×8 single-channel images with 1,797 samples; the published budgets (220
rounds × 400 KD steps at batch 256) would take hours on a CPU and vastly over-train a
10-class toy problem. So: batches of 128, far fewer rounds, crop padding of 1 pixel (4
pixels of an 8-pixel image would erase the digit), no flips (digits are not
mirror-symmetric), and T = 4."""

FASHION_BUDGET: dict[str, Any] = {
    "warmup_rounds": 20,
    "kd_batch_size": 128,
    "temperature": 4.0,
    "student_lr": 0.01,
    "crop_padding": 2,
    "flip": True,
}
"""28×28 single-channel teachers (Fashion-MNIST, MNIST, KMNIST), measured on a small_cnn
Fashion-MNIST teacher and a tiny_cnn student and calibrated on a validation split of the
training images. T = 4 and student lr 0.01 instead of T = 20 / lr 0.2: at lr 0.2 (and at
0.05) the tiny student could not fit even a fixed synthetic pool and predicted one class;
lr 0.005–0.02 all fitted it. Batches of 128 instead of 256 and crop padding 2 instead of 4
(a 28-pixel image). Budgets (rounds, warm-up, KD steps) that a 2-core CPU finishes in
9–18 minutes."""

FASHION_GENERATOR: dict[str, Any] = {
    "synthesis_batch_size": 128,
    "conditional_generator": False,
    "adv_weight": 15.0,
}
"""The meta generator at 28×28: the published z-only generator, adversarial weight 15
instead of the published 1.33. The first calibration, at 1.33, found the z-only generator
piling its batches onto 3–4 of the 10 classes, which a class-conditional generator
(labels beside z, ``conditional_generator=True``) avoided; that generator collapsed
within each class at 1.33 (the teacher-feature diversity of its images fell from 0.45,
that of real images, to 0.09 by round 150) and its student plateaued, while 15 kept it
at real data's level and gained 2 points of validation accuracy on two seeds. At 15 the
z-only generator is the better of the two on the validation split: SSD-KD 86.08%
against 84.10% (medians of 5 seeds), Fast-2 86.78% and 86.26% against 84.14% and 84.68%
(seeds 0 and 1), with batches less class-balanced and images the teacher is less sure of
(``docs/notes/2026-12-06-unconditional-generator.md``). Fast-5 takes Fast-2's generator
without a probe of its own. The generator (with its sigmoid output in [0, 1], normalised
by the data set's mean and std as the real images are) starts from a 7×7 map instead of
the published 8×8."""

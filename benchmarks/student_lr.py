"""Can the student fit a fixed synthetic pool? KD settings swept on one pool.

Synthesises a pool with the warm-up rounds of a Fast-DFKD preset (no student involved),
then trains a fresh student on it with the library's KD step (``StudentStep``) for a
fixed number of steps under each setting (learning rate, temperature, augmentation,
momentum), all from the same initial weights and the same batch draws. Reported per
setting: the final KD loss, the share of the pool on which student and teacher agree
(can the student fit its own training data?), and accuracy and the most frequent class
share on a validation split of the training images (the last 5,000; never the test set).

This separates "the synthetic data does not cover the real classes" from "the student's
optimisation fails": a student that cannot fit its own pool collapses for the second
reason.

    OMP_NUM_THREADS=2 python benchmarks/student_lr.py --teacher teachers/fashion_small_cnn.pt
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import torch
from _common import command_line, machine_info

from ssdkd.data import load_dataset
from ssdkd.engine.teacher import load_teacher
from ssdkd.generators import Augment
from ssdkd.losses import KDLoss
from ssdkd.methods import PRESETS, FastDFKD, StudentStep
from ssdkd.methods.common import ModelInput
from ssdkd.models import create_model

ROOT = Path(__file__).resolve().parent.parent
SETTINGS: dict[str, dict[str, Any]] = {
    "lr 0.005": {"student_lr": 0.005},
    "lr 0.01": {"student_lr": 0.01},
    "lr 0.02": {"student_lr": 0.02},
    "lr 0.03": {"student_lr": 0.03},
    "lr 0.05": {"student_lr": 0.05},
    "lr 0.2": {"student_lr": 0.2},
    "lr 0.05, no KD augmentation": {"student_lr": 0.05, "kd_augment": False},
    "lr 0.05, T 1": {"student_lr": 0.05, "temperature": 1.0},
    "lr 0.2, T 20 (Fast-DFKD's CIFAR values)": {"student_lr": 0.2, "temperature": 20.0},
    "lr 0.01, T 2": {"student_lr": 0.01, "temperature": 2.0},
    "lr 0.01, T 8": {"student_lr": 0.01, "temperature": 8.0},
    "lr 0.01, momentum 0.5": {"student_lr": 0.01, "student_momentum": 0.5},
}
"""Setting name → config fields changed from the preset."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--preset", default="fashion-mnist", help="a fast-dfkd preset")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--student", default="tiny_cnn")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--pool-rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "docs" / "results" / "student_lr.json"))
    parser.add_argument("--quick", action="store_true", help="tiny pool and steps (smoke)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset)
    x_val, y_val = data.x_train[-5000:], data.y_train[-5000:]
    teacher, _ = load_teacher(args.teacher)
    config = PRESETS["fast-dfkd"][args.preset]
    pool_rounds, steps, settings = args.pool_rounds, args.steps, SETTINGS
    if args.quick:
        config = dataclasses.replace(config, synthesis_batch_size=16, kd_batch_size=16)
        pool_rounds, steps = 2, 3
        settings = dict(list(SETTINGS.items())[:2])
    channels, size, _ = data.image_shape

    def student() -> torch.nn.Module:
        torch.manual_seed(args.seed)
        return create_model(
            args.student, num_classes=data.num_classes, in_channels=channels, image_size=size
        )

    synthesis = FastDFKD(
        teacher,
        student(),
        dataclasses.replace(config, rounds=pool_rounds + 1, warmup_rounds=pool_rounds),
        num_classes=data.num_classes,
        image_shape=data.image_shape,
        normalization=(data.mean, data.std),
        seed=args.seed,
    )
    for round_index in range(pool_rounds):
        synthesis.synthesize(round_index)
    pool = synthesis.synthetic_images()
    model_input = ModelInput(data.mean, data.std)

    @torch.no_grad()
    def predict(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
        model.eval()
        return torch.cat(
            [
                model(model_input(images[i : i + 1000])).argmax(1)
                for i in range(0, len(images), 1000)
            ]
        )

    teacher_classes = predict(teacher, pool)
    rows = []
    for name, changes in settings.items():
        net = student()
        setting = dataclasses.replace(config, **changes)
        optimizer = torch.optim.SGD(
            net.parameters(),
            lr=setting.student_lr,
            momentum=setting.student_momentum,
            weight_decay=setting.student_weight_decay,
        )
        trainer = StudentStep(
            net,
            optimizer,
            KDLoss(temperature=setting.temperature),
            teacher=teacher,
            model_input=model_input,
            scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, steps)),
            augment=(
                Augment(crop_padding=setting.crop_padding, flip=setting.flip)
                if setting.kd_augment
                else None
            ),
            mixup=setting.kd_mixup,
            generator=torch.Generator().manual_seed(0),
        )
        draws = torch.Generator().manual_seed(0)
        metrics: dict[str, torch.Tensor] = {}
        for _ in range(steps):
            index = torch.randint(0, len(pool), (config.kd_batch_size,), generator=draws)
            metrics = trainer.step(pool[index]).metrics
        on_val = predict(net, x_val)
        row = {
            "setting": name,
            "changes": changes,
            "final_kd_loss": float(metrics["kd_loss"]),
            "pool_agreement": float((predict(net, pool) == teacher_classes).float().mean()),
            "val_accuracy": float((on_val == y_val).float().mean()),
            "val_top_class_share": float(torch.bincount(on_val, minlength=10).max()) / len(on_val),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "command": command_line(),
        "machine": machine_info(),
        "preset": args.preset,
        "pool_images": int(pool.shape[0]),
        "steps": steps,
        "seed": args.seed,
        "rows": rows,
    }
    out.write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        f"Pool: {pool.shape[0]} images from {pool_rounds} warm-up rounds of the `{args.preset}` "
        f"Fast-2 preset; {steps} KD steps of batch {config.kd_batch_size} per setting.",
        "",
        "| setting | final KD loss | student = teacher on the pool | validation accuracy "
        "| most frequent class share |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['setting']} | {row['final_kd_loss']:.3f} | {100 * row['pool_agreement']:.1f}% "
            f"| {100 * row['val_accuracy']:.1f}% | {100 * row['val_top_class_share']:.0f}% |"
        )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

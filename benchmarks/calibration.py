"""Calibration probes on a validation split of the training images (never the test set).

One probe runs one method with a preset and ``field=value`` overrides, for one seed, and
records per round what the synthetic data and the student look like: the synthesis
metrics (loss parts, class entropies, teacher confidence, target agreement, φ), the KD
metrics (``kl``, ``kd_loss``, ``weight_mean``, ``weight_ess``: round means; ``beta``: after
the round's last step) and, every few rounds, the teacher's class
histogram of the last 2,000 images of ``synthetic_images()`` (``newest_teacher_classes``:
the newest images of a growing pool, but the last *slots* of SSD-KD's ring buffer once it
is full, so they repeat until the write cursor passes them) with their within-class
diversity (``newest_diversity``: mean pairwise cosine distance of the teacher's
penultimate features within each teacher class; ``real_diversity`` is the same on 2,000
validation images) and the student's accuracy, most frequent class share, predicted-class
histogram and per-class recall on the last 5,000 training images, which the student never
sees; beside them, how closely the student follows the teacher (KL at temperature 1 and
argmax agreement) on those real images (``val_teacher_*``) and on the images it learns from
(``data_teacher_*``), with the teacher's class histogram and per-class mean confidence of
the latter. At the end, ``final_bn_reestimated`` holds the validation accuracy of the
final student after its BN running statistics are re-estimated (a cumulative average,
train mode, no weight change) on the images it learns from (``buffer``: data-free) and on
the first 5,000 training images outside the validation split (``real``: an oracle that no
data-free method has, a diagnosis of how much of the student's error is its BN statistics
of synthetic images). This is how the 28×28 presets were chosen (the calibration record
in ``docs/notes/``). The seed fixes the student's initial weights and then the method's streams
exactly as ``ssdkd.distill`` does, so a probe of seed S follows the study's run of seed S
on the same kind of machine until its settings differ.

Resumable: a probe writes ``RESULTS/NAME.json`` when it ends and is skipped when that
file exists.

    OMP_NUM_THREADS=2 python benchmarks/calibration.py NAME ssd-kd --preset fashion-mnist \\
        rounds=100 weight_norm=max
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from _common import FASHION_MNIST_TEACHER, VALIDATION, command_line, machine_info, write_json
from torch.nn.modules.batchnorm import _BatchNorm

from ssdkd.data import load_dataset
from ssdkd.engine.rounds import summarize_synthesis
from ssdkd.engine.teacher import load_teacher
from ssdkd.methods import METHODS, PRESETS, apply_overrides
from ssdkd.methods.diagnostics import within_class_diversity
from ssdkd.models import create_model

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="probe name (the result file's stem)")
    parser.add_argument("method", choices=sorted(METHODS))
    parser.add_argument("settings", nargs="*", help="field=value overrides of the preset")
    parser.add_argument("--preset", default="fashion-mnist")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument(
        "--teacher",
        default=str(FASHION_MNIST_TEACHER),
        help="teacher checkpoint (default: the Fashion-MNIST study's teacher)",
    )
    parser.add_argument("--student", default="tiny_cnn")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--every", type=int, default=0, help="evaluate every N rounds")
    parser.add_argument(
        "--results", default=str(ROOT / "docs" / "results" / "calibration_fashion-mnist")
    )
    return parser.parse_intermixed_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.results) / f"{args.name}.json"
    if out.exists():
        print(f"{out} exists: skipped")
        return 0
    torch.set_num_threads(args.threads)
    machine = machine_info()  # at the start: the commit of the code this probe imported
    method_class = METHODS[args.method].method_class
    config = apply_overrides(PRESETS[args.method][args.preset], args.settings)
    data = load_dataset(args.dataset)
    x_val, y_val = data.x_train[-VALIDATION:], data.y_train[-VALIDATION:]
    outside = data.x_train[:-VALIDATION][:VALIDATION]  # only for the BN-statistics oracle
    teacher, _ = load_teacher(args.teacher)
    channels, size, _ = data.image_shape
    student = create_model(
        args.student,
        num_classes=data.num_classes,
        in_channels=channels,
        image_size=size,
        seed=args.seed,
    )
    method = method_class(
        teacher,
        student,
        config,
        num_classes=data.num_classes,
        image_shape=data.image_shape,
        normalization=(data.mean, data.std),
        seed=args.seed,
    )
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)

    @torch.no_grad()
    def logits(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
        was = model.training
        model.eval()
        out = torch.cat(
            [model((images[i : i + 1000] - mean) / std) for i in range(0, len(images), 1000)]
        )
        model.train(was)
        return out

    def predict(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
        return logits(model, images).argmax(1)

    def fit(t_logits: torch.Tensor, s_logits: torch.Tensor) -> dict[str, float]:
        """How closely the student follows the teacher on the same images (temperature 1)."""
        t_log = t_logits.log_softmax(1)
        kl = (t_log.exp() * (t_log - s_logits.log_softmax(1))).sum(1).mean()
        agreement = (t_logits.argmax(1) == s_logits.argmax(1)).float().mean()
        return {"kl": float(kl), "agreement": float(agreement)}

    head = [m for m in teacher.modules() if isinstance(m, torch.nn.Linear)][-1]

    @torch.no_grad()
    def diversity(images: torch.Tensor) -> float:
        """Within-class diversity of the teacher's penultimate features (its last Linear's
        input), by the teacher's class."""
        captured: list[torch.Tensor] = []
        handle = head.register_forward_pre_hook(lambda _m, inputs: captured.append(inputs[0]))
        try:
            classes = predict(teacher, images)
        finally:
            handle.remove()
        features = torch.cat(captured).flatten(1)
        return float(within_class_diversity(features, classes, data.num_classes))

    @torch.no_grad()
    def reestimated_bn_accuracy(images: torch.Tensor) -> float:
        """Validation accuracy of a copy of the student whose BN running statistics are
        the cumulative average over ``images`` (in train mode; weights unchanged)."""
        model = copy.deepcopy(student)
        for norm in model.modules():
            if isinstance(norm, _BatchNorm):
                norm.reset_running_stats()
                norm.momentum = None
        model.train()
        for i in range(0, len(images), 500):
            model((images[i : i + 500] - mean) / std)
        return float((predict(model, x_val) == y_val).float().mean())

    real_diversity = diversity(x_val[:2000])
    teacher_val = logits(teacher, x_val)  # the teacher is frozen: once for the whole probe
    every = args.every or max(1, config.rounds // 15)
    records: list[dict[str, Any]] = []
    overall = 0.0
    for round_index in range(config.rounds):
        start = time.perf_counter()
        # The method's own round: as the engine runs it (RoundPlan).
        plan = method.round_plan(round_index)
        synthesis: list[dict[str, Any]] = []
        steps: list[dict[str, float]] = []
        for _ in range(plan.iterations):
            synthesis.append(method.synthesize(round_index))
            steps += [
                {key: float(value) for key, value in method.distill_step().items()}
                for _ in range(plan.student_steps)
            ]
        record: dict[str, Any] = {"round": round_index + 1, **summarize_synthesis(synthesis)}
        overall += time.perf_counter() - start
        record["overall_seconds"] = overall
        for key in ("kd_loss", "kl", "weight_mean", "weight_ess"):
            values = [step[key] for step in steps if key in step and not step["skipped"]]
            if values:
                record[key] = sum(values) / len(values)
        if steps and "beta" in steps[-1]:
            record["beta"] = steps[-1]["beta"]
        last = round_index + 1 == config.rounds
        if (round_index + 1) % every == 0 or last or round_index + 1 == config.warmup_rounds:
            newest = method.synthetic_images()[-2000:]
            classes = predict(teacher, newest)
            record["newest_teacher_classes"] = torch.bincount(
                classes, minlength=data.num_classes
            ).tolist()
            record["newest_diversity"] = diversity(newest)
            student_val = logits(student, x_val)
            predicted = student_val.argmax(1)
            record["val_accuracy"] = float((predicted == y_val).float().mean())
            counts = torch.bincount(predicted, minlength=data.num_classes)
            record["val_top_class_share"] = float(counts.max()) / VALIDATION
            record["val_predicted_classes"] = counts.tolist()
            record["val_recall"] = [
                float((predicted[y_val == c] == c).float().mean()) for c in range(data.num_classes)
            ]
            for key, value in fit(teacher_val, student_val).items():
                record[f"val_teacher_{key}"] = value
            learnt = method.synthetic_images()
            teacher_learnt = logits(teacher, learnt)
            for key, value in fit(teacher_learnt, logits(student, learnt)).items():
                record[f"data_teacher_{key}"] = value
            confidence, learnt_classes = teacher_learnt.softmax(1).max(1)
            record["data_teacher_classes"] = torch.bincount(
                learnt_classes, minlength=data.num_classes
            ).tolist()
            record["data_class_confidence"] = [
                float(confidence[learnt_classes == c].mean()) if count else 0.0
                for c, count in enumerate(record["data_teacher_classes"])
            ]
            print(json.dumps(record), flush=True)
        records.append(record)
    records[-1]["final_bn_reestimated"] = {
        "buffer": reestimated_bn_accuracy(method.synthetic_images()),
        # None where the training set has no images outside the validation split (digits)
        "real": reestimated_bn_accuracy(outside) if len(outside) else None,
    }
    result = {
        "name": args.name,
        "method": args.method,
        "preset": args.preset,
        "settings": args.settings,
        "seed": args.seed,
        "real_diversity": real_diversity,
        "command": command_line(),
        "machine": machine,
        "records": records,
    }
    write_json(out, result)
    final = records[-1]
    print(f"{args.name}: validation accuracy {final['val_accuracy']:.4f}, {overall:.0f} s overall")
    print(f"with BN statistics re-estimated: {final['final_bn_reestimated']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

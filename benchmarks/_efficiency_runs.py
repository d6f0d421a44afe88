"""The efficiency study's runs: the teacher and one ``ssdkd.distill`` run."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import torch
from _common import FASHION_MNIST_TEACHER, VALIDATION, shown_path

import ssdkd
from ssdkd.data import Dataset
from ssdkd.engine.evaluation import evaluate_accuracy
from ssdkd.engine.teacher import TEACHER_RECIPES, load_teacher, save_teacher, train_teacher
from ssdkd.methods import MethodConfig, spec_of_config
from ssdkd.models import create_model

TEACHERS = {"fashion-mnist": FASHION_MNIST_TEACHER}
"""The study's default teacher per dataset."""


def get_teacher(args: argparse.Namespace, data: Dataset) -> tuple[torch.nn.Module, str]:
    """Load ``--teacher`` or the dataset's teacher in ``TEACHERS``, or train (once, cached) a
    small_cnn digits teacher."""
    path = Path(args.teacher) if args.teacher else TEACHERS.get(args.dataset)
    if path is None:
        path = Path(args.cache_dir) / "digits_small_cnn_seed0.pt"
        if not path.exists():
            recipe = TEACHER_RECIPES["digits"]
            torch.manual_seed(0)
            channels, size, _ = data.image_shape
            model = create_model(
                "small_cnn", num_classes=data.num_classes, in_channels=channels, image_size=size
            )
            result = train_teacher(
                model, data, **dataclasses.asdict(recipe), seed=0, device="cpu", progress=False
            )
            save_teacher(
                path,
                model,
                model_name="small_cnn",
                dataset=data,
                accuracy=result.accuracy,
                in_channels=channels,
                image_size=size,
            )
    teacher, meta = load_teacher(path)
    if meta["dataset"] != data.name:
        raise SystemExit(f"teacher {path} was trained on {meta['dataset']}, not {data.name}")
    return teacher, shown_path(path)


def _student(name: str, data: Dataset, seed: int) -> torch.nn.Module:
    channels, size, _ = data.image_shape
    return create_model(
        name, num_classes=data.num_classes, in_channels=channels, image_size=size, seed=seed
    )


def run_distill(
    config: MethodConfig,
    seed: int,
    *,
    teacher: torch.nn.Module,
    args: Any,
    data: Dataset,
) -> tuple[list[dict[str, Any]], torch.nn.Module]:
    """One ``ssdkd.distill`` run of the method whose config ``config`` is; returns its
    per-round history and final student."""
    spec = spec_of_config(config)
    result = ssdkd.distill(
        teacher,
        _student(args.student, data, seed),
        spec.name,
        num_classes=data.num_classes,
        image_shape=data.image_shape,
        normalization=(data.mean, data.std),
        config=config,
        eval_data=(data.x_test, data.y_test),
        train_data=(data.x_train, data.y_train) if spec.method_class.needs_train_data else None,
        device="cpu",
        seed=seed,
        progress=False,
    )
    return result.history, result.student


def validation_accuracy(model: torch.nn.Module, data: Dataset) -> float:
    """Accuracy on the last ``VALIDATION`` training images, the calibration split."""
    return evaluate_accuracy(
        model,
        data.x_train[-VALIDATION:],
        data.y_train[-VALIDATION:],
        normalize=(data.mean, data.std),
    )

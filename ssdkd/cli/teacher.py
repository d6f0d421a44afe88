"""``ssdkd train-teacher``: train a teacher on real data and save it."""

from __future__ import annotations

import argparse
import sys

from ssdkd.cli._args import (
    HelpFormatter,
    Subparsers,
    _add_name,
    _device,
    _float_at_least,
    _non_negative_int,
    _positive_int,
)


def _recipe_help(description: str, field: str, unit: str = "") -> str:
    from ssdkd.engine.teacher import TEACHER_RECIPES

    values = ", ".join(
        f"{name} {getattr(recipe, field)}{unit}" for name, recipe in TEACHER_RECIPES.items()
    )
    return f"{description} (default: the dataset's recipe: {values})"


def _add_train_teacher(subparsers: Subparsers) -> None:
    from ssdkd.data import DATASETS
    from ssdkd.models import MODELS

    parser = subparsers.add_parser(
        "train-teacher",
        help="train a teacher on real data and save it as a checkpoint",
        description="Train a teacher from scratch with SGD on a local dataset, evaluate it "
        "on the held-out split, and write a checkpoint (state_dict + metadata: model, "
        "dataset, classes, normalisation mean/std, accuracy) that loads with "
        "torch.load(weights_only=True). The teacher expects images (x - mean) / std.",
        formatter_class=HelpFormatter,
    )
    _add_name(parser, "--model", list(MODELS), "architecture")
    _add_name(parser, "--dataset", DATASETS, "dataset")
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="dataset directory (default: fashion-mnist: /usr/share/datasets/fashion-mnist; "
        "mnist, cifar10, cifar100: required; digits: unused, it ships with scikit-learn)",
    )
    parser.add_argument("--out", required=True, metavar="PATH", help="checkpoint file to write")
    parser.add_argument(
        "--epochs", type=_positive_int, help=_recipe_help("training epochs", "epochs")
    )
    parser.add_argument(
        "--lr",
        type=_float_at_least(0.0, True),
        help=_recipe_help("initial SGD learning rate", "lr"),
    )
    parser.add_argument(
        "--batch-size", type=_positive_int, help=_recipe_help("images per SGD step", "batch_size")
    )
    parser.add_argument(
        "--weight-decay",
        type=_float_at_least(0.0, False),
        help=_recipe_help("L2 weight decay", "weight_decay"),
    )
    parser.add_argument(
        "--schedule",
        choices=("cosine", "multistep"),
        help=_recipe_help("learning-rate schedule", "schedule"),
    )
    parser.add_argument(
        "--crop-padding",
        type=_non_negative_int,
        help=_recipe_help("random-crop padding of the augmentation", "crop_padding", " px"),
    )
    parser.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=_recipe_help("random horizontal flips", "flip"),
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of weights, order, augmentation")
    parser.add_argument(
        "--device", type=_device, default="auto", help="'auto' (CUDA when available), 'cpu', ..."
    )
    parser.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    parser.set_defaults(handler=_run_train_teacher)


def _run_train_teacher(args: argparse.Namespace) -> int:
    import dataclasses

    import torch

    from ssdkd.data import load_dataset
    from ssdkd.engine.teacher import TEACHER_RECIPES, save_teacher, train_teacher
    from ssdkd.models import create_model

    dataset = load_dataset(args.dataset, args.data_dir)
    overrides = {
        name: getattr(args, name)
        for name in (
            "epochs",
            "lr",
            "batch_size",
            "weight_decay",
            "schedule",
            "crop_padding",
            "flip",
        )
        if getattr(args, name) is not None
    }
    recipe = dataclasses.replace(TEACHER_RECIPES[args.dataset], **overrides)
    channels, size, _ = dataset.image_shape
    torch.manual_seed(args.seed)
    model = create_model(
        args.model, num_classes=dataset.num_classes, in_channels=channels, image_size=size
    )
    print(
        f"training {args.model} on {args.dataset} ({len(dataset.y_train)} images) for "
        f"{recipe.epochs} epochs on {args.device}",
        file=sys.stderr,
    )
    result = train_teacher(
        model,
        dataset,
        **dataclasses.asdict(recipe),
        seed=args.seed,
        device=args.device,
        progress=not args.no_progress,
    )
    save_teacher(
        args.out,
        result.model,
        model_name=args.model,
        dataset=dataset,
        accuracy=result.accuracy,
        in_channels=channels,
        image_size=size,
    )
    print(
        f"held-out accuracy {result.accuracy:.2%} on {len(dataset.y_test)} {args.dataset} "
        f"images; trained in {result.seconds:.1f} s; teacher written to {args.out}"
    )
    return 0

"""The ``ssdkd`` command line.

Each subcommand is one ``_add_<command>(subparsers)`` function that builds its parser and
sets ``handler`` to a function ``(args) -> int``; :data:`COMMANDS` lists them in the
order ``ssdkd --help`` shows. Expected failures (a missing dataset, a corrupt checkpoint,
an invalid setting) print one ``ssdkd: error: ...`` line and exit with status 1
(``--debug`` or ``SSDKD_DEBUG=1`` shows their traceback); bad command-line arguments give
argparse's usage error and status 2; anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["COMMANDS", "build_parser", "main"]

Subparsers = Any
"""argparse's subparsers action (its class is private to argparse)."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every option's default; options whose default is ``None`` explain it in
    their help text instead of printing "(default: None)"."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _float_at_least(minimum: float, strict: bool) -> Callable[[str], float]:
    relation = ">" if strict else ">="

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not math.isfinite(value) or not (value > minimum if strict else value >= minimum):
            raise argparse.ArgumentTypeError(
                f"expected a finite number {relation} {minimum}, got {text!r}"
            )
        return value

    return parse


def _device(text: str) -> str:
    import torch

    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a torch device such as 'cpu' or 'cuda:0', got {text!r}"
        ) from None
    return text


def _add_name(parser: argparse.ArgumentParser, flag: str, names: Sequence[str], what: str) -> None:
    """A required ``--flag NAME`` whose choices are listed in the help."""
    parser.add_argument(
        flag,
        required=True,
        choices=list(names),
        metavar="NAME",
        help=f"{what}, one of: {', '.join(names)}",
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
        "cifar10/cifar100: required; digits: unused, it ships with scikit-learn)",
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


@contextlib.contextmanager
def _collapse_warnings_shown_once(*, progress: bool) -> Iterator[None]:
    """Show a run's collapse warning once: with a progress display, the run prints its
    sentence there, so Python's display of the same warning is switched off."""
    from ssdkd.engine import CollapseWarning

    with warnings.catch_warnings():
        if progress:
            warnings.simplefilter("ignore", CollapseWarning)
        yield


def _add_demo(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="SSD-KD on scikit-learn digits with a noise control (about a minute on a CPU)",
        description="Train (or reuse from the cache) a small_cnn teacher on scikit-learn "
        "digits, distil a tiny_cnn student with SSD-KD without real images, distil the same "
        "student on uniform noise as a control, evaluate both on the held-out real digits, "
        "print a table and write run directories and plots to --out.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--out", default="ssdkd-demo", metavar="DIR", help="output directory")
    parser.add_argument(
        "--cache-dir",
        default=None,
        metavar="DIR",
        help="where the trained teacher is cached (default: $XDG_CACHE_HOME/ssdkd or "
        "~/.cache/ssdkd)",
    )
    parser.add_argument(
        "--rounds",
        type=_positive_int,
        default=None,
        help="SSD-KD rounds, for a smaller budget (default: the digits preset's 40)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the teacher and both runs")
    parser.add_argument("--no-progress", action="store_true", help="do not show progress bars")
    parser.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from ssdkd.engine.demo import format_report, run_demo

    if args.rounds is not None and args.rounds < 2:
        raise ValueError(f"Expected --rounds >= 2 (one warm-up round), got {args.rounds}")
    with _collapse_warnings_shown_once(progress=not args.no_progress):
        report = run_demo(
            args.out,
            cache_dir=args.cache_dir,
            rounds=args.rounds,
            seed=args.seed,
            progress=not args.no_progress,
        )
    print(format_report(report))
    return 0


def _add_distill(subparsers: Subparsers) -> None:
    from ssdkd.data import DATASETS
    from ssdkd.methods import METHODS, PRECISIONS, PRESETS
    from ssdkd.models import MODELS

    presets = "; ".join(f"{m}: {', '.join(p)}" for m, p in PRESETS.items())
    parser = subparsers.add_parser(
        "distill",
        help="distil a teacher checkpoint into a student without data",
        description="Distil a teacher written by `ssdkd train-teacher` into a student with "
        "one of the reference methods, evaluating the student on the dataset's held-out "
        "real images after every round, and report the final round's accuracy. The run "
        "directory receives config.json, metrics.jsonl (one record per round, with "
        "collapse diagnostics), checkpoints/last.pt, checkpoints/best.pt (the round most "
        "accurate on the held-out images, so selected on them), synthetic.pt and PNG plots. "
        "Under torchrun (`torchrun --nproc-per-node N -m ssdkd distill ...`) it runs data "
        "parallel on N processes; see docs/concepts/distributed.md.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--method",
        required=True,
        choices=list(METHODS),
        help="distillation method ("
        + "; ".join(f"{name}: {spec.summary}" for name, spec in METHODS.items())
        + ")",
    )
    parser.add_argument("--teacher", required=True, metavar="CKPT", help="teacher checkpoint")
    _add_name(parser, "--student", list(MODELS), "student architecture")
    _add_name(parser, "--dataset", DATASETS, "held-out data for evaluation")
    parser.add_argument(
        "--data-dir", default=None, metavar="DIR", help="dataset directory (as train-teacher)"
    )
    parser.add_argument(
        "--preset", default="paper", help=f"config preset of the method ({presets})"
    )
    parser.add_argument(
        "--rounds", type=_positive_int, default=None, help="rounds (default: the preset's)"
    )
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="set a config field, e.g. --set buffer_size=6000 (repeatable)",
    )
    parser.add_argument("--run-dir", required=True, metavar="DIR", help="run directory")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the run directory's last checkpoint"
    )
    parser.add_argument(
        "--eval-every",
        type=_positive_int,
        default=1,
        metavar="ROUNDS",
        help="evaluate every ROUNDS rounds and after the last",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        default=1,
        metavar="ROUNDS",
        help="checkpoint every ROUNDS rounds and after the last (a resumed run repeats "
        "the rounds after its last checkpoint)",
    )
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="autocast mode")
    parser.add_argument(
        "--device", type=_device, default="auto", help="'auto' (CUDA when available), 'cpu', ..."
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    parser.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    parser.set_defaults(handler=_run_distill)


def _run_distill(args: argparse.Namespace) -> int:
    import torch

    from ssdkd.data import load_dataset
    from ssdkd.engine.distill import distill
    from ssdkd.engine.teacher import load_teacher
    from ssdkd.methods import PRESETS, apply_overrides
    from ssdkd.models import create_model

    presets = PRESETS[args.method]
    if args.preset not in presets:
        raise ValueError(
            f"Expected --preset for {args.method} to be one of {list(presets)}, got {args.preset!r}"
        )
    config = apply_overrides(presets[args.preset], args.settings)
    teacher, meta = load_teacher(args.teacher)
    dataset = load_dataset(args.dataset, args.data_dir)
    channels, size, _ = dataset.image_shape
    if (meta["num_classes"], meta["in_channels"], meta["image_size"]) != (
        dataset.num_classes,
        channels,
        size,
    ):
        raise ValueError(
            f"teacher {args.teacher!r} takes {meta['in_channels']}x{meta['image_size']}"
            f"x{meta['image_size']} images of {meta['num_classes']} classes, but dataset "
            f"{args.dataset!r} has {channels}x{size}x{size} images of {dataset.num_classes}"
        )
    torch.manual_seed(args.seed)
    student = create_model(
        args.student, num_classes=dataset.num_classes, in_channels=channels, image_size=size
    )
    with _collapse_warnings_shown_once(progress=not args.no_progress):
        result = distill(
            teacher,
            student,
            args.method,
            num_classes=dataset.num_classes,
            image_shape=dataset.image_shape,
            normalization=(meta["mean"], meta["std"]),
            config=config,
            rounds=args.rounds,
            eval_data=(dataset.x_test, dataset.y_test),
            device=args.device,
            precision=args.precision,
            seed=args.seed,
            run_dir=args.run_dir,
            resume=args.resume,
            progress=not args.no_progress,
            eval_every=args.eval_every,
            checkpoint_every=args.checkpoint_every,
        )
    if torch.distributed.is_initialized():
        # Under torchrun: every rank holds the same result; rank 0 reports it.
        rank = torch.distributed.get_rank()
        torch.distributed.destroy_process_group()
        if rank != 0:
            return 0
    last = result.history[-1]
    print(
        f"{args.method}: final-round held-out accuracy {result.final_accuracy:.2%} "
        f"(teacher {meta['accuracy']:.2%}); {last['images_synthesized']} synthetic images, "
        f"{last['kd_steps']} KD steps, {last['overall_seconds']:.1f} s synthesis + KD; "
        f"run directory {args.run_dir}"
    )
    return 0


def _add_plot(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "plot",
        help="draw a run directory's plots again",
        description="Write accuracy.png, diagnostics.png (the per-round collapse "
        "diagnostics the run recorded), samples.png (labelled with the teacher's class and "
        "confidence) and buffer_histograms.png into a run directory from its metrics.jsonl "
        "and synthetic.pt (needs matplotlib).",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of `ssdkd distill`")
    parser.set_defaults(handler=_run_plot)


def _run_plot(args: argparse.Namespace) -> int:
    from ssdkd.engine.plots import plot_run

    for path in plot_run(args.run_dir):
        print(path)
    return 0


COMMANDS: list[Callable[[Subparsers], None]] = [
    _add_demo,
    _add_distill,
    _add_train_teacher,
    _add_plot,
]
"""The subcommand builders, in help order; each adds one subparser with a ``handler``."""


def build_parser() -> argparse.ArgumentParser:
    """The ``ssdkd`` parser with one subparser per entry of :data:`COMMANDS`.

    Example:
        >>> args = build_parser().parse_args(
        ...     ["train-teacher", "--model", "small_cnn", "--dataset", "digits", "--out", "t.pt"])
        >>> args.command, args.epochs, args.seed
        ('train-teacher', None, 0)
    """
    from ssdkd import __version__

    parser = argparse.ArgumentParser(
        prog="ssdkd",
        description="Data-free knowledge distillation: SSD-KD, Fast-DFKD and DeepInversion.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the full traceback of every error (or set {DEBUG_ENV}=1)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


DEBUG_ENV = "SSDKD_DEBUG"
"""Set to a non-empty value other than ``0`` for the full traceback of every error."""


def _is_expected(exc: BaseException) -> bool:
    """Whether ``exc`` is a user-facing failure (one line) rather than a bug (traceback).

    Missing or corrupt files, a missing optional package and runs that diverged are
    expected wherever they are raised; a ``ValueError`` only when ssdkd's own argument
    checks raised it (one from deep inside torch is shown with its traceback).
    """
    from ssdkd.data import DatasetFormatError, DatasetNotFoundError
    from ssdkd.engine.checkpoint import CheckpointError
    from ssdkd.methods.precision import NonFiniteLossError

    if isinstance(
        exc,
        (
            DatasetNotFoundError,
            DatasetFormatError,
            CheckpointError,
            NonFiniteLossError,
            ModuleNotFoundError,
            OSError,
        ),
    ):
        return True
    if isinstance(exc, ValueError):
        frames = traceback.extract_tb(exc.__traceback__)
        package = Path(__file__).resolve().parent
        return bool(frames) and Path(frames[-1].filename).resolve().is_relative_to(package)
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ssdkd`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit status.

    0 on success (and for ``--help``), 1 for an expected error (one line on stderr; the
    full traceback with ``--debug`` or ``SSDKD_DEBUG=1``), 2 for bad arguments (argparse's
    usage message), 130 when interrupted. Any other exception is a bug and propagates
    with its traceback.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        status: int = args.handler(args)
    except KeyboardInterrupt:
        print("ssdkd: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug or not _is_expected(exc):
            raise
        print(f"ssdkd: error: {exc}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())

"""``ssdkd distill``: distil a teacher checkpoint into a student without data."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ssdkd.cli._args import (
    HelpFormatter,
    Subparsers,
    _add_name,
    _device,
    _network,
    _positive_int,
)


@contextlib.contextmanager
def _collapse_warnings_shown_once(*, progress: bool) -> Iterator[None]:
    """Show a run's collapse warning once: with a progress display, the run prints its
    sentence there, so Python's display of the same warning is switched off."""
    from ssdkd.engine import CollapseWarning

    with warnings.catch_warnings():
        if progress:
            warnings.simplefilter("ignore", CollapseWarning)
        yield


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
        "parallel on N processes; see docs/concepts/distributed.md. The run directory's "
        "command.json records the options, so `ssdkd distill --run-dir DIR --resume` "
        "continues a run without repeating them.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--method",
        choices=list(METHODS),
        help="distillation method ("
        + "; ".join(f"{name}: {spec.summary}" for name, spec in METHODS.items())
        + ")",
    )
    parser.add_argument(
        "--teacher",
        metavar="CKPT",
        help="teacher checkpoint of `ssdkd train-teacher`, or a state-dict file with "
        "--teacher-model",
    )
    parser.add_argument(
        "--teacher-model",
        type=_network,
        metavar="NAME_OR_FUNC",
        help="for a --teacher state-dict file: an ssdkd.models name, or a "
        "package.module:function that builds your network (called without arguments)",
    )
    parser.add_argument(
        "--mean",
        type=float,
        nargs="+",
        metavar="M",
        help="with --teacher-model: the per-channel mean of the teacher's input "
        "normalisation, for images in [0, 1] (default: the dataset's training mean)",
    )
    parser.add_argument(
        "--std",
        type=float,
        nargs="+",
        metavar="S",
        help="with --teacher-model: the per-channel std (default: the dataset's)",
    )
    parser.add_argument(
        "--student",
        type=_network,
        metavar="NAME_OR_FUNC",
        help=f"student architecture: one of {', '.join(MODELS)}, or a "
        "package.module:function that builds your network (called without arguments)",
    )
    _add_name(parser, "--dataset", DATASETS, "held-out data for evaluation", required=False)
    parser.add_argument(
        "--data-dir", default=None, metavar="DIR", help="dataset directory (as train-teacher)"
    )
    parser.add_argument(
        "--preset",
        default=None,
        help="config preset of the method; default: the one made for the teacher's input "
        f"size (paper: 3x32x32, digits: 1x8x8, fashion-mnist: 1x28x28, mnist: 1x32x32 or "
        f"1x28x28) ({presets})",
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
        "--overwrite",
        action="store_true",
        help="replace the run the run directory holds (without it, and without --resume, "
        "a directory holding a run is refused)",
    )
    parser.add_argument(
        "--eval-every",
        type=_positive_int,
        metavar="ROUNDS",
        help="evaluate every ROUNDS rounds and after the last (default: 1)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        metavar="ROUNDS",
        help="checkpoint every ROUNDS rounds and after the last; a resumed run repeats "
        "the rounds after its last checkpoint (default: 1)",
    )
    parser.add_argument("--precision", choices=PRECISIONS, help="autocast mode (default: fp32)")
    parser.add_argument(
        "--device", type=_device, default="auto", help="'auto' (CUDA when available), 'cpu', ..."
    )
    parser.add_argument("--seed", type=int, help="seed of every random choice (default: 0)")
    parser.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    parser.set_defaults(handler=_run_distill)


_RECORDED: dict[str, object] = {
    "method": None,
    "teacher": None,
    "teacher_model": None,
    "mean": None,
    "std": None,
    "student": None,
    "dataset": None,
    "data_dir": None,
    "preset": None,
    "rounds": None,
    "settings": [],
    "precision": "fp32",
    "seed": 0,
    "eval_every": 1,
    "checkpoint_every": 1,
}
"""The options a run directory's ``command.json`` records, with their defaults."""

_COMMAND_FILE = "command.json"


def _complete_from_run_dir(args: argparse.Namespace) -> None:
    """Give each option the user left out its value from the run directory's
    ``command.json`` (with ``--resume``), else its default.

    Raises:
        ValueError: ``--method``, ``--teacher``, ``--student`` or ``--dataset`` missing for
            a new run.
    """
    path = Path(args.run_dir) / _COMMAND_FILE
    stored: dict[str, object] = {}
    if args.resume and path.is_file():
        try:
            stored = json.loads(path.read_text())
        except ValueError as error:
            raise ValueError(
                f"run directory file {str(path)!r} is not valid JSON: {error}"
            ) from None
    for key, default in _RECORDED.items():
        if getattr(args, key) in (None, []):
            setattr(args, key, stored.get(key, default))
    missing = [
        f"--{k}" for k in ("method", "teacher", "student", "dataset") if not getattr(args, k)
    ]
    if missing:
        raise ValueError(
            f"Expected {', '.join(missing)} for a new run (--resume on a run directory "
            f"takes them from its {_COMMAND_FILE})"
        )


def _record_command(args: argparse.Namespace) -> None:
    """Write the run's options to ``command.json`` (rank 0), never over another run's: a
    resumed run keeps the file it has (its options must match it, or the engine refuses
    the checkpoint), and the engine refuses a directory holding a run without
    ``--resume`` or ``--overwrite``."""
    from ssdkd.engine.run_state import held_run

    directory = Path(args.run_dir)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if (args.resume and (directory / _COMMAND_FILE).is_file()) or (
        held_run(directory) is not None and not (args.resume or args.overwrite)
    ):
        return
    record = {key: getattr(args, key) for key in _RECORDED}
    record["teacher_accuracy"] = getattr(args, "teacher_accuracy", None)
    record["teacher"] = str(Path(args.teacher).resolve())
    if args.data_dir is not None:
        record["data_dir"] = str(Path(args.data_dir).resolve())
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f".{_COMMAND_FILE}.tmp"
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(temporary, directory / _COMMAND_FILE)


def _load_teacher(args: argparse.Namespace, dataset: Any) -> tuple[Any, dict[str, Any]]:
    """The teacher and its metadata: an ssdkd teacher checkpoint, or (with
    ``--teacher-model``) a network built by name or function with the weights of a
    state-dict file, whose held-out accuracy is measured here."""
    from ssdkd.cli.networks import build_network, load_state_dict_file
    from ssdkd.engine import CheckpointError
    from ssdkd.engine.evaluation import evaluate_accuracy
    from ssdkd.engine.teacher import load_teacher

    if args.teacher_model is None:
        if args.mean is not None or args.std is not None:
            raise ValueError(
                "Expected --mean/--std only with --teacher-model (a checkpoint of "
                "`ssdkd train-teacher` records its normalisation)"
            )
        try:
            return load_teacher(args.teacher)
        except CheckpointError as error:
            if "is of kind" not in str(error):
                raise
            raise ValueError(
                f"{error}: for a network of your own, pass its state-dict file as --teacher "
                "with --teacher-model (an ssdkd.models name or package.module:function) and "
                "--mean/--std, or call ssdkd.distill from Python"
            ) from None
    channels, size, _ = dataset.image_shape
    teacher = build_network(
        args.teacher_model, num_classes=dataset.num_classes, in_channels=channels, image_size=size
    )
    try:
        teacher.load_state_dict(load_state_dict_file(args.teacher))
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise ValueError(
            f"Expected the weights in {args.teacher!r} to fit --teacher-model "
            f"{args.teacher_model!r}: {first}"
        ) from None
    mean = tuple(args.mean) if args.mean is not None else dataset.mean
    std = tuple(args.std) if args.std is not None else dataset.std
    accuracy = evaluate_accuracy(
        teacher.eval(), dataset.x_test, dataset.y_test, normalize=(mean, std)
    )
    meta = {
        "mean": list(mean),
        "std": list(std),
        "accuracy": accuracy,
        "num_classes": dataset.num_classes,
        "in_channels": channels,
        "image_size": size,
    }
    return teacher, meta


def _run_distill(args: argparse.Namespace) -> int:
    import torch

    from ssdkd.cli.networks import build_network
    from ssdkd.data import load_dataset
    from ssdkd.engine.distill import distill
    from ssdkd.engine.distributed import end_process
    from ssdkd.methods import METHODS, PRESETS, apply_overrides
    from ssdkd.methods.registry import PRESET_INPUTS, preset_for

    _complete_from_run_dir(args)
    presets = PRESETS[args.method]
    if args.preset is not None and args.preset not in presets:
        raise ValueError(
            f"Expected --preset for {args.method} to be one of {list(presets)}, got {args.preset!r}"
        )
    dataset = load_dataset(args.dataset, args.data_dir)
    teacher, meta = _load_teacher(args, dataset)
    channels, size, _ = dataset.image_shape
    if (meta["num_classes"], meta["in_channels"], meta["image_size"]) != (
        dataset.num_classes,
        channels,
        size,
    ):
        raise ValueError(
            f"teacher {args.teacher!r} takes {meta['in_channels']}x{meta['image_size']}"
            f"x{meta['image_size']} images of {meta['num_classes']} classes, but dataset "
            f"{args.dataset!r} has {channels}x{size}x{size} images of {dataset.num_classes} classes"
        )
    shape = f"{channels}x{size}x{size}"
    preset, hint = args.preset, None
    if preset is None:
        preset = preset_for(args.method, channels, size)
        if preset is None:
            made_for = ", ".join(
                f"{name} ({'/'.join(f'{c}x{s}x{s}' for c, s in PRESET_INPUTS[name])})"
                for name in presets
            )
            raise ValueError(
                f"Expected a --preset: no preset of {args.method} was made for the teacher's "
                f"{shape} images (presets: {made_for}); choose one with --preset and adapt "
                "its budget with --set"
            )
        print(f"ssdkd: --preset {preset} (made for the teacher's {shape} images)", file=sys.stderr)
    elif (channels, size) not in PRESET_INPUTS[preset]:
        made = "/".join(f"{c}x{s}x{s}" for c, s in PRESET_INPUTS[preset])
        hint = (
            f"The preset {preset!r} was made for {made} images, and this teacher takes {shape}"
            + (
                f"; --preset {preset_for(args.method, channels, size)} was made for them."
                if preset_for(args.method, channels, size)
                else "."
            )
        )
        print(f"ssdkd: note: {hint}", file=sys.stderr)
    config = apply_overrides(presets[preset], args.settings)
    if args.resume and not any(Path(args.run_dir).glob("checkpoints/*.pt")):
        print(
            f"ssdkd: note: {args.run_dir} holds no checkpoint to resume; starting a new run",
            file=sys.stderr,
        )
    args.preset = preset
    args.teacher_accuracy = meta.get("accuracy")
    _record_command(args)
    # Seeded like create_model(..., seed=): a user's builder reads torch's global
    # generator, forked so that the caller's stream is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        student = build_network(
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
            overwrite=args.overwrite,
            collapse_hint=hint,
            student_model=args.student if ":" not in args.student else None,
            train_data=(
                (dataset.x_train, dataset.y_train)
                if METHODS[args.method].method_class.needs_train_data
                else None
            ),
        )
    # Under torchrun every rank holds the same result; rank 0 reports it.
    if not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0:
        last = result.history[-1]
        print(
            f"{args.method}: final-round held-out accuracy {result.final_accuracy:.2%} "
            f"(teacher {meta['accuracy']:.2%}); {last['images_synthesized']} synthetic "
            f"images, {last['kd_steps']} KD steps, {last['overall_seconds']:.1f} s "
            f"synthesis + KD; run directory {args.run_dir}"
        )
    if torch.distributed.is_initialized():
        end_process(0)
    return 0

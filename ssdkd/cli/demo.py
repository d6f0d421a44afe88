"""``ssdkd demo`` and ``ssdkd plot``."""

from __future__ import annotations

import argparse

from ssdkd.cli._args import (
    HelpFormatter,
    Subparsers,
    _positive_int,
)
from ssdkd.cli.distill import _collapse_warnings_shown_once


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
    parser.add_argument(
        "run_dirs",
        nargs="+",
        metavar="RUN_DIR",
        help="a run directory of `ssdkd distill`; several: one accuracy figure comparing "
        "them (needs --out)",
    )
    parser.add_argument(
        "--x",
        choices=("seconds", "round", "kd_steps"),
        default="seconds",
        help="x axis of the accuracy figure",
    )
    parser.add_argument(
        "--out", metavar="PNG", help="with several runs: the comparison figure to write"
    )
    parser.set_defaults(handler=_run_plot)


def _run_plot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ssdkd.engine.plots import plot_accuracy_vs_time, plot_run, teacher_accuracy_of
    from ssdkd.engine.records import read_metrics

    if len(args.run_dirs) == 1:
        for path in plot_run(args.run_dirs[0], x=args.x):
            print(path)
        return 0
    if args.out is None:
        raise ValueError("Expected --out PNG for the comparison of several runs")
    histories = {str(Path(run)): read_metrics(run) for run in args.run_dirs}
    teachers = {teacher_accuracy_of(run) for run in args.run_dirs} - {None}
    teacher = teachers.pop() if len(teachers) == 1 else None
    print(plot_accuracy_vs_time(histories, args.out, x=args.x, teacher_accuracy=teacher))
    return 0

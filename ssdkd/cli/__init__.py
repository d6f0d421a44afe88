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
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["COMMANDS", "build_parser", "main"]

from ssdkd.cli._args import HelpFormatter, Subparsers
from ssdkd.cli.demo import _add_demo, _add_plot
from ssdkd.cli.distill import _add_distill
from ssdkd.cli.export import _add_export
from ssdkd.cli.teacher import _add_train_teacher

COMMANDS: list[Callable[[Subparsers], None]] = [
    _add_demo,
    _add_distill,
    _add_train_teacher,
    _add_plot,
    _add_export,
]
"""The subcommand builders, in help order; each adds one subparser with a ``handler``."""


def build_parser() -> argparse.ArgumentParser:
    """The ``ssdkd`` parser with one subparser per entry of :data:`COMMANDS`.

    Examples:
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
        package = Path(__file__).resolve().parents[1]  # ssdkd/, not ssdkd/cli/
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
        print(
            "ssdkd: interrupted (a distill run continues from its last checkpoint with the "
            "same command and --resume)",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:
        if debug or not _is_expected(exc):
            raise
        print(f"ssdkd: error: {exc}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())

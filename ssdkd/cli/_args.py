"""Argument types and the help formatter every subcommand shares."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from typing import Any

Subparsers = Any
"""argparse's subparsers action (its class is private to argparse)."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every option's default; options whose default is ``None`` or an empty list
    (a repeatable option given no value) explain it in their help text instead of printing
    "(default: None)" or "(default: [])"."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default == []:
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
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a torch device such as 'cpu' or 'cuda:0', got {text!r}"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(
            f"expected a device this machine has, got {text!r}: no CUDA device is available "
            f"(torch {torch.__version__}); use 'cpu' or 'auto'"
        )
    return text


def _network(text: str) -> str:
    """A network on the command line: a name of ssdkd.models, or package.module:function
    (imported when it is built)."""
    from ssdkd.models import MODELS

    module, colon, function = text.partition(":")
    if colon and module and function:
        return text
    if text not in MODELS:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(MODELS)} or package.module:function, got {text!r}"
        )
    return text


def _add_name(
    parser: argparse.ArgumentParser,
    flag: str,
    names: Sequence[str],
    what: str,
    *,
    required: bool = True,
) -> None:
    """A ``--flag NAME`` (required unless told) whose choices are listed in the help."""
    parser.add_argument(
        flag,
        required=required,
        choices=list(names),
        metavar="NAME",
        help=f"{what}, one of: {', '.join(names)}",
    )

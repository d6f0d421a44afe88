"""Argument checks shared by the model constructors."""

from __future__ import annotations


def check_model_args(num_classes: int, in_channels: int, image_size: int) -> None:
    """Raise ``ValueError`` unless all three are positive integers."""
    for name, value in (
        ("num_classes", num_classes),
        ("in_channels", in_channels),
        ("image_size", image_size),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"Expected `{name}` to be a positive integer, got {value!r}")

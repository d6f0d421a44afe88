"""Networks named on the command line: a :data:`~ssdkd.models.MODELS` name, or a
``package.module:function`` of the user's that builds one, with a state-dict file."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["build_network", "load_state_dict_file"]


def build_network(spec: str, *, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """The network ``spec`` names.

    A name of :data:`~ssdkd.models.MODELS` is built for the data's shape;
    ``package.module:function`` is imported (from the working directory too) and called
    without arguments, and must return an ``nn.Module``.

    Raises:
        ValueError: An unknown name, a function that cannot be imported, or one that
            returns no ``nn.Module``.
    """
    from ssdkd.models import MODELS, create_model

    if ":" not in spec:
        if spec not in MODELS:
            raise ValueError(
                f"Expected a model name of ssdkd.models ({', '.join(MODELS)}) or "
                f"'package.module:function', got {spec!r}"
            )
        return create_model(
            spec, num_classes=num_classes, in_channels=in_channels, image_size=image_size
        )
    module_name, _, function_name = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # a console script's path lacks the working directory
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise ValueError(
            f"Expected an importable 'package.module:function', got {spec!r}: {error}"
        ) from None
    network = function()
    if not isinstance(network, nn.Module):
        raise ValueError(
            f"Expected {spec!r} to return a torch.nn.Module, got {type(network).__name__}"
        )
    return network


def load_state_dict_file(path: str | Path) -> dict[str, Any]:
    """The weights in ``path``: a state dict saved with ``torch.save``, or a dict holding
    one under ``"state_dict"`` (loaded with ``weights_only=True``).

    Raises:
        ValueError: The file cannot be loaded or holds no state dict.
    """
    from ssdkd.engine.checkpoint import CheckpointError, load_checkpoint

    try:
        state = load_checkpoint(path)
    except CheckpointError as error:
        raise ValueError(str(error)) from None
    weights = state.get("state_dict", state)
    if not isinstance(weights, dict) or not all(
        isinstance(v, torch.Tensor) for v in weights.values()
    ):
        raise ValueError(
            f"Expected {str(path)!r} to hold a state dict (parameter name → tensor), or one "
            "under 'state_dict'"
        )
    return weights

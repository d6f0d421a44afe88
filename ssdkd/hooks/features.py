"""Record the outputs of named submodules during a forward pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from ssdkd.hooks._context import RecordingContext

__all__ = ["FeatureHook"]


class FeatureHook(RecordingContext):
    """Context manager recording the outputs of named submodules (for feature losses).

    Follows the same rules as :class:`~ssdkd.hooks.BNStatsHook`: :attr:`features` is read
    inside the block, holds each module's latest output (with its autograd graph), is
    dropped when the block closes, and every handle is removed on exit, also when the
    body raises. The modules are not changed.

    Args:
        model: The network.
        names: Qualified names of submodules of ``model`` (as in ``named_modules()``).

    Raises:
        TypeError: ``names`` is not a sequence of strings.
        ValueError: ``names`` is empty, repeats a name, or names no submodule of ``model``.

    Examples:
        >>> import torch
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> with FeatureHook(net, ["1"]) as hook:
        ...     _ = net(torch.ones(5, 3))
        ...     hidden = hook.features["1"]
        >>> tuple(hidden.shape)
        (5, 4)
    """

    def __init__(self, model: nn.Module, names: Sequence[str]) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"Expected `model` to be a torch.nn.Module, got {type(model).__name__}")
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise TypeError(
                f"Expected `names` to be a sequence of module names, got {type(names).__name__}"
            )
        if len(names) == 0:
            raise ValueError("Expected `names` to hold at least one module name, got none")
        if len(set(names)) != len(names):
            raise ValueError(f"Expected `names` without repeats, got {list(names)}")
        modules = dict(model.named_modules())
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"Expected `names` to hold strings, got {type(name).__name__}")
            if name not in modules:
                raise ValueError(f"Expected `names` to name submodules of `model`, got {name!r}")
        self._modules = [(name, modules[name]) for name in names]
        self._recorded: dict[str, Tensor] = {}

    def _register(self, handles: list[RemovableHandle]) -> None:
        for name, module in self._modules:
            handles.append(module.register_forward_hook(self._make_hook(name)))

    def _make_hook(self, name: str) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            if not isinstance(output, Tensor):
                raise TypeError(
                    f"FeatureHook records tensors; module {name!r} returned {type(output).__name__}"
                )
            self._recorded[name] = output

        return hook

    def _clear(self) -> None:
        self._recorded = {}

    @property
    def features(self) -> dict[str, Tensor]:
        """The latest output of each module that has run in this block, keyed by name.

        Raises:
            RuntimeError: Read outside the ``with`` block.
        """
        self._require_open("features")
        return dict(self._recorded)

    def _describe(self) -> str:
        return f"names={[name for name, _ in self._modules]}"

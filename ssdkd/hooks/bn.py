"""Record the input statistics of BatchNorm layers during a forward pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.hooks import RemovableHandle

from ssdkd.hooks._context import RecordingContext

__all__ = ["BNLayerStats", "BNStatsHook", "batchnorm_layers", "has_batchnorm"]

# `_BatchNorm` is the common base of BatchNorm1d/2d/3d, SyncBatchNorm and the lazy variants,
# and (unlike `_NormBase`) excludes InstanceNorm, whose running statistics mean something
# else. torch exposes no public name for it.
_BATCHNORM_TYPES = (_BatchNorm,)


def batchnorm_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """List the BatchNorm layers of ``model`` in ``named_modules()`` order.

    Every BatchNorm1d/2d/3d and SyncBatchNorm counts (InstanceNorm does not).

    Args:
        model: Any module; ``model`` itself is included when it is a BatchNorm layer.

    Returns:
        ``(qualified name, layer)`` pairs; the name of ``model`` itself is ``""``.

    Examples:
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(),
        ...                     nn.Linear(4, 2), nn.BatchNorm1d(2))
        >>> [name for name, _ in batchnorm_layers(net)]
        ['1', '4']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected `model` to be a torch.nn.Module, got {type(model).__name__}")
    return [(name, m) for name, m in model.named_modules() if isinstance(m, _BATCHNORM_TYPES)]


def has_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` contains at least one BatchNorm layer.

    Examples:
        >>> has_batchnorm(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)))
        True
        >>> has_batchnorm(nn.Linear(2, 2))
        False
    """
    return bool(batchnorm_layers(model))


@dataclass(frozen=True)
class BNLayerStats:
    """Statistics of one BatchNorm layer's input for one forward pass.

    Attributes:
        name: Qualified name of the layer in the model (``""`` for the model itself).
        mean: ``(C,)`` per-channel mean of the input over every dimension but the channel
            one; float32; part of the autograd graph of the input.
        var: ``(C,)`` per-channel *biased* variance (divided by the number of values, as
            BatchNorm normalises), float32, part of the graph.
        running_mean: ``(C,)`` the layer's ``running_mean`` when it received the input;
            a detached float32 copy.
        running_var: ``(C,)`` the layer's ``running_var``, detached float32 copy.

    Examples:
        >>> s = BNLayerStats("bn", torch.zeros(2), torch.ones(2), torch.zeros(2), torch.ones(2))
        >>> s.name, tuple(s.mean.shape)
        ('bn', (2,))
    """

    name: str
    mean: Tensor
    var: Tensor
    running_mean: Tensor
    running_var: Tensor


def _input_stats(x: Tensor) -> tuple[Tensor, Tensor]:
    # Reducing over explicit dimension indices is independent of the memory layout, so
    # channels_last inputs give the same numbers as contiguous ones.
    dims = [0, *range(2, x.dim())]
    # Under autocast the layer's input may be half precision; statistics of 16-bit values
    # lose the small differences the BN loss is made of, so they are taken in float32.
    # Disabling autocast keeps var_mean from being recast to a lower precision.
    with torch.autocast(device_type=x.device.type, enabled=False):
        var, mean = torch.var_mean(x.float(), dim=dims, correction=0)
    return mean, var


class BNStatsHook(RecordingContext):
    """Context manager recording the input statistics of BatchNorm layers.

    Inside the ``with`` block a forward pre-hook on each layer records the per-channel
    batch mean and biased variance of the layer's *input* (what the BatchNorm-statistics
    loss of DeepInversion compares with the running statistics), together with a copy of
    the layer's running statistics. The hook only records: it never changes the model,
    and every handle is removed when the block closes, also when the body raises.

    Rules:

    - :attr:`stats` may be read inside the block once every selected layer has received
      an input; each layer holds the statistics of its **latest** call, so after a second
      forward pass inside the same block the statistics are those of the second pass.
    - When the block closes the recorded statistics are dropped (this releases their
      autograd graph); reading :attr:`stats` afterwards raises ``RuntimeError``. Keep the
      list returned inside the block if you need it later.
    - Entering an instance that is already open raises ``RuntimeError``; a closed
      instance may be entered again and starts empty.
    - A selected layer in training mode is refused with ``RuntimeError`` (on entry and
      on each forward): a training-mode forward would overwrite the teacher's running
      statistics and normalise with the batch statistics instead. Pass
      ``allow_train_mode=True`` to record anyway.

    Args:
        model: The network (usually a frozen teacher in eval mode).
        modules: The BatchNorm layers to record, in the order :attr:`stats` lists them;
            each must be a submodule of ``model``. By default every BatchNorm layer of
            ``model`` in ``named_modules()`` order.
        allow_train_mode: Record layers in training mode instead of refusing them.

    Raises:
        TypeError: ``model`` is not a module or an entry of ``modules`` is not a BatchNorm.
        ValueError: ``model`` has no BatchNorm layer, an entry of ``modules`` is not part
            of ``model`` or is repeated, or a layer keeps no running statistics.

    Examples:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
        >>> images = torch.rand(2, 3, 8, 8, requires_grad=True)
        >>> with BNStatsHook(net) as bn:
        ...     _ = net(images)
        ...     stats = bn.stats
        >>> [(s.name, tuple(s.mean.shape)) for s in stats]
        [('1', (4,))]
        >>> stats[0].var.requires_grad
        True
    """

    def __init__(
        self,
        model: nn.Module,
        modules: Sequence[nn.Module] | None = None,
        *,
        allow_train_mode: bool = False,
    ) -> None:
        super().__init__()
        layers = batchnorm_layers(model)
        if modules is None:
            if not layers:
                raise ValueError(
                    f"Expected `model` to contain BatchNorm layers, got a "
                    f"{type(model).__name__} without any"
                )
            selected = layers
        else:
            selected = self._select(model, layers, modules)
        for name, layer in selected:
            if getattr(layer, "running_mean", None) is None:
                raise ValueError(
                    f"Expected every recorded BatchNorm layer to keep running statistics, got "
                    f"layer {name!r} built with track_running_stats=False"
                )
        self._layers = selected
        self._allow_train_mode = bool(allow_train_mode)
        self._recorded: dict[str, BNLayerStats] = {}

    @staticmethod
    def _select(
        model: nn.Module, layers: list[tuple[str, nn.Module]], modules: Sequence[nn.Module]
    ) -> list[tuple[str, nn.Module]]:
        if isinstance(modules, nn.Module) or not isinstance(modules, Sequence):
            raise TypeError(
                f"Expected `modules` to be a sequence of BatchNorm layers or None, got "
                f"{type(modules).__name__}"
            )
        if len(modules) == 0:
            raise ValueError("Expected `modules` to name at least one layer, got an empty list")
        names = {id(layer): name for name, layer in model.named_modules()}
        selected: list[tuple[str, nn.Module]] = []
        for i, layer in enumerate(modules):
            if not isinstance(layer, _BATCHNORM_TYPES):
                raise TypeError(
                    f"Expected `modules[{i}]` to be a BatchNorm layer, got {type(layer).__name__}"
                )
            if id(layer) not in names:
                raise ValueError(f"Expected `modules[{i}]` to be a submodule of `model`, it is not")
            if any(layer is chosen for _, chosen in selected):
                raise ValueError(f"Expected each layer once in `modules`, `modules[{i}]` repeats")
            selected.append((names[id(layer)], layer))
        return selected

    @property
    def layer_names(self) -> list[str]:
        """Names of the recorded layers, in the order of :attr:`stats`."""
        return [name for name, _ in self._layers]

    def _check_train_mode(self, name: str, layer: nn.Module) -> None:
        if layer.training and not self._allow_train_mode:
            raise RuntimeError(
                f"BatchNorm layer {name!r} is in training mode: a forward pass would overwrite "
                "its running statistics and normalise with batch statistics. Call "
                "`teacher.eval()` first, or pass allow_train_mode=True to record anyway."
            )

    def _check_enter(self) -> None:
        for name, layer in self._layers:
            self._check_train_mode(name, layer)

    def _register(self, handles: list[RemovableHandle]) -> None:
        for name, layer in self._layers:
            handles.append(layer.register_forward_pre_hook(self._make_hook(name)))

    def _make_hook(self, name: str) -> Any:
        def hook(layer: nn.Module, args: tuple[Any, ...]) -> None:
            self._check_train_mode(name, layer)
            mean, var = _input_stats(args[0])
            # Copies, because a training-mode forward (when allowed) updates the buffers in
            # place right after this hook; the statistics must be those the input met.
            running_mean, running_var = layer.running_mean, layer.running_var
            # Layers without running statistics were refused in __init__.
            assert isinstance(running_mean, Tensor)
            assert isinstance(running_var, Tensor)
            self._recorded[name] = BNLayerStats(
                name,
                mean,
                var,
                running_mean.detach().to(torch.float32, copy=True),
                running_var.detach().to(torch.float32, copy=True),
            )

        return hook

    def _clear(self) -> None:
        self._recorded = {}

    @property
    def stats(self) -> list[BNLayerStats]:
        """Statistics of every recorded layer's latest input, in layer order.

        Raises:
            RuntimeError: Read outside the ``with`` block, or a layer has not run yet.
        """
        self._require_open("stats")
        missing = [name for name, _ in self._layers if name not in self._recorded]
        if missing:
            raise RuntimeError(
                f"BNStatsHook.stats: layers {missing} have not received an input in this "
                "block; run a forward pass first (or select only the layers that run via "
                "`modules=`)"
            )
        return [self._recorded[name] for name, _ in self._layers]

    def _describe(self) -> str:
        return f"layers={self.layer_names}"

"""BatchNorm-statistics losses: match a batch's statistics to the teacher's running ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ssdkd.hooks.bn import BNLayerStats
from ssdkd.losses._checks import check_float_tensor, check_number

__all__ = ["BNStatLoss", "BNStatMomentum", "bn_stat_loss"]


def _check_stats(stats: object) -> list[BNLayerStats]:
    if not isinstance(stats, Sequence) or isinstance(stats, str):
        raise TypeError(
            f"Expected `stats` to be a sequence of BNLayerStats, got {type(stats).__name__}"
        )
    if len(stats) == 0:
        raise ValueError("Expected `stats` to hold at least one layer, got an empty sequence")
    checked: list[BNLayerStats] = []
    for i, layer in enumerate(stats):
        if not isinstance(layer, BNLayerStats):
            raise TypeError(
                f"Expected `stats[{i}]` to be a BNLayerStats, got {type(layer).__name__}"
            )
        fields = {
            "mean": layer.mean,
            "var": layer.var,
            "running_mean": layer.running_mean,
            "running_var": layer.running_var,
        }
        for field, value in fields.items():
            check_float_tensor(f"stats[{i}].{field}", value)
        channels = layer.mean.shape
        for field, value in fields.items():
            if value.dim() != 1 or value.shape != channels:
                raise ValueError(
                    f"Expected `stats[{i}].{field}` to have shape (C,) = {tuple(channels)} like "
                    f"`stats[{i}].mean`, got {tuple(value.shape)}"
                )
        checked.append(layer)
    return checked


def _check_layer_weights(layer_weights: object, num_layers: int) -> list[float] | None:
    if layer_weights is None:
        return None
    if isinstance(layer_weights, (str, Tensor)) or not isinstance(layer_weights, Sequence):
        raise TypeError(
            f"Expected `layer_weights` to be a sequence of numbers or None, got "
            f"{type(layer_weights).__name__}"
        )
    if len(layer_weights) != num_layers:
        raise ValueError(
            f"Expected `layer_weights` to hold one weight per layer ({num_layers}), got "
            f"{len(layer_weights)}"
        )
    return [
        check_number(f"layer_weights[{i}]", w, minimum=0.0, inclusive=True)
        for i, w in enumerate(layer_weights)
    ]


def _weighted_sum(stats: list[BNLayerStats], weights: list[float] | None) -> Tensor:
    terms = [
        torch.linalg.vector_norm(s.mean - s.running_mean)
        + torch.linalg.vector_norm(s.var - s.running_var)
        for s in stats
    ]
    if weights is not None:
        terms = [w * term for w, term in zip(weights, terms, strict=True)]
    return torch.stack(terms).sum()


def bn_stat_loss(
    stats: Sequence[BNLayerStats], *, layer_weights: Sequence[float] | None = None
) -> Tensor:
    """DeepInversion's BatchNorm-statistics loss.

    L_BN = Σ_l w_l (‖μ_l − running_mean_l‖₂ + ‖σ²_l − running_var_l‖₂)

    with μ_l, σ²_l the per-channel batch mean and biased variance of layer l's input
    (as :class:`~ssdkd.hooks.BNStatsHook` records them). The norms are plain Euclidean
    norms over channels, neither squared nor averaged. The loss describes the whole
    batch, so it has no per-sample form and no ``reduction``.

    Args:
        stats: One :class:`~ssdkd.hooks.BNLayerStats` per layer.
        layer_weights: Optional w_l ≥ 0, one per layer (DeepInversion's ImageNet recipe
            weights the first layer 10×); all 1 by default.

    Returns:
        A scalar tensor, differentiable with respect to the batch statistics.

    Raises:
        TypeError: ``stats`` or ``layer_weights`` has the wrong type.
        ValueError: ``stats`` is empty, a layer's tensors are not all ``(C,)``, or
            ``layer_weights`` has the wrong length or a negative weight.

    Examples:
        >>> from ssdkd.hooks import BNLayerStats
        >>> s = BNLayerStats("bn", mean=torch.tensor([3.0, 4.0]), var=torch.ones(2),
        ...                  running_mean=torch.zeros(2), running_var=torch.ones(2))
        >>> bn_stat_loss([s])
        tensor(5.)
        >>> bn_stat_loss([s, s], layer_weights=[10.0, 1.0])
        tensor(55.)
    """
    checked = _check_stats(stats)
    return _weighted_sum(checked, _check_layer_weights(layer_weights, len(checked)))


class BNStatLoss(nn.Module):
    """Module twin of :func:`bn_stat_loss`.

    Args:
        layer_weights: Optional w_l ≥ 0, one per layer.

    Examples:
        >>> from ssdkd.hooks import BNLayerStats
        >>> s = BNLayerStats("bn", torch.zeros(2), torch.full((2,), 2.0),
        ...                  torch.zeros(2), torch.ones(2))
        >>> BNStatLoss()([s])  # ‖(1, 1)‖₂
        tensor(1.4142)
    """

    def __init__(self, layer_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if layer_weights is not None:
            # Validated here for the type and sign; the length is checked against the
            # statistics at each call.
            _check_layer_weights(layer_weights, len(layer_weights))
        self.layer_weights = None if layer_weights is None else [float(w) for w in layer_weights]

    def forward(self, stats: Sequence[BNLayerStats]) -> Tensor:
        """See :func:`bn_stat_loss`."""
        return bn_stat_loss(stats, layer_weights=self.layer_weights)


_STATE_VERSION = 1


class BNStatMomentum:
    """Fast-DFKD's momentum form of the BatchNorm-statistics loss ("bn_mmt").

    Keeps an exponential moving average (μ̄_l, σ̄²_l) of the statistics of previous
    synthesis batches and compares the running statistics with the mix

        μ̃_l = (1 − m)·μ_l + m·μ̄_l,   σ̃²_l = (1 − m)·σ²_l + m·σ̄²_l

    so that a batch is asked to make the *accumulated* synthetic data match the teacher,
    not to match it alone. Computing and updating are separate calls:

    - :meth:`forward` (or calling the object) returns
      Σ_l w_l (‖μ̃_l − running_mean_l‖₂ + ‖σ̃²_l − running_var_l‖₂); before the first
      :meth:`update` it is the plain :func:`bn_stat_loss`;
    - :meth:`update` (once per synthesis round, with the statistics of the round's last
      batch) sets EMA ← m·EMA + (1 − m)·batch, detached; the first update copies the batch.

    It is not an ``nn.Module``: its state is a list of EMA tensors whose length is only
    known after the first update, and :meth:`state_dict` returns plain tensors, strings and
    numbers that load with ``torch.load(..., weights_only=True)``.

    Args:
        momentum: m in [0, 1); Fast-DFKD uses 0.9. With m = 0 this is the plain loss.
        layer_weights: Optional w_l ≥ 0, one per layer.

    Examples:
        >>> from ssdkd.hooks import BNLayerStats
        >>> def stats(mu):
        ...     return [BNLayerStats("bn", torch.tensor([mu]), torch.ones(1),
        ...                          torch.zeros(1), torch.ones(1))]
        >>> mmt = BNStatMomentum(momentum=0.9)
        >>> mmt(stats(1.0))  # no EMA yet: plain loss |1 − 0|
        tensor(1.)
        >>> mmt.update(stats(1.0))
        >>> mmt(stats(0.0))  # mix 0.1·0 + 0.9·1
        tensor(0.9000)
        >>> mmt.update(stats(0.0))
        >>> mmt.ema_mean[0]  # 0.9·1 + 0.1·0
        tensor([0.9000])
    """

    def __init__(
        self, momentum: float = 0.9, *, layer_weights: Sequence[float] | None = None
    ) -> None:
        self.momentum = check_number("momentum", momentum, minimum=0.0, inclusive=True, maximum=1.0)
        if layer_weights is not None:
            _check_layer_weights(layer_weights, len(layer_weights))
        self.layer_weights = None if layer_weights is None else [float(w) for w in layer_weights]
        self._names: list[str] = []
        self._mean: list[Tensor] = []
        self._var: list[Tensor] = []

    @property
    def initialized(self) -> bool:
        """Whether :meth:`update` has run (so that the momentum mix is in use)."""
        return bool(self._mean)

    @property
    def ema_mean(self) -> list[Tensor]:
        """The EMA of the per-layer batch means, ``(C,)`` each (empty before an update)."""
        return list(self._mean)

    @property
    def ema_var(self) -> list[Tensor]:
        """The EMA of the per-layer biased batch variances (empty before an update)."""
        return list(self._var)

    def _check_matches(self, stats: list[BNLayerStats]) -> None:
        if not self.initialized:
            return
        names = [s.name for s in stats]
        if names != self._names:
            raise ValueError(
                f"Expected `stats` for the layers the moving average tracks {self._names}, "
                f"got {names}"
            )
        for i, (s, mean) in enumerate(zip(stats, self._mean, strict=True)):
            if s.mean.shape != mean.shape:
                raise ValueError(
                    f"Expected `stats[{i}].mean` to have shape {tuple(mean.shape)} like the "
                    f"moving average, got {tuple(s.mean.shape)}"
                )

    def forward(self, stats: Sequence[BNLayerStats]) -> Tensor:
        """The momentum BN loss of a batch; see the class description.

        Args:
            stats: One :class:`~ssdkd.hooks.BNLayerStats` per layer, the same layers (by
                name and channel count) as the updates.

        Returns:
            A scalar tensor, differentiable with respect to the batch statistics.
        """
        checked = _check_stats(stats)
        weights = _check_layer_weights(self.layer_weights, len(checked))
        self._check_matches(checked)
        if self.initialized:
            m = self.momentum
            checked = [
                BNLayerStats(
                    s.name,
                    (1.0 - m) * s.mean + m * ema_mean.to(s.mean),
                    (1.0 - m) * s.var + m * ema_var.to(s.var),
                    s.running_mean,
                    s.running_var,
                )
                for s, ema_mean, ema_var in zip(checked, self._mean, self._var, strict=True)
            ]
        return _weighted_sum(checked, weights)

    __call__ = forward

    def update(self, stats: Sequence[BNLayerStats]) -> None:
        """Fold a batch's statistics into the moving average (detached).

        Args:
            stats: The statistics of the batch that ends a synthesis round.
        """
        checked = _check_stats(stats)
        self._check_matches(checked)
        batch_mean = [s.mean.detach().clone() for s in checked]
        batch_var = [s.var.detach().clone() for s in checked]
        if not self.initialized:
            self._names = [s.name for s in checked]
            self._mean, self._var = batch_mean, batch_var
            return
        m = self.momentum
        self._mean = [
            m * e + (1.0 - m) * b.to(e) for e, b in zip(self._mean, batch_mean, strict=True)
        ]
        self._var = [m * e + (1.0 - m) * b.to(e) for e, b in zip(self._var, batch_var, strict=True)]

    def to(self, device: torch.device | str) -> BNStatMomentum:
        """Move the moving average to ``device`` (after loading a state saved elsewhere)."""
        self._mean = [t.to(device) for t in self._mean]
        self._var = [t.to(device) for t in self._var]
        return self

    def reset(self) -> None:
        """Forget the moving average (the next loss is the plain one again)."""
        self._names, self._mean, self._var = [], [], []

    def state_dict(self) -> dict[str, Any]:
        """The moving average as plain tensors, strings and numbers.

        Returns:
            ``{"version": 1, "momentum": m, "names": [...], "mean": [...], "var": [...]}``
            (empty lists before the first update).
        """
        return {
            "version": _STATE_VERSION,
            "momentum": self.momentum,
            "names": list(self._names),
            "mean": [t.clone() for t in self._mean],
            "var": [t.clone() for t in self._var],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; a rejected state leaves the object unchanged.

        The stored momentum is informational: the instance keeps its own ``momentum``.

        Raises:
            ValueError: Unknown version, or inconsistent names / tensor lists.
        """
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            got = state.get("version") if isinstance(state, dict) else type(state).__name__
            raise ValueError(
                f"Expected `state` to be a BNStatMomentum state of version {_STATE_VERSION}, "
                f"got {got!r}"
            )
        names, mean, var = state.get("names"), state.get("mean"), state.get("var")
        if not (isinstance(names, list) and isinstance(mean, list) and isinstance(var, list)):
            raise ValueError("Expected `state` to hold lists 'names', 'mean' and 'var'")
        if not len(names) == len(mean) == len(var):
            raise ValueError(
                f"Expected `state` lists of equal length, got names {len(names)}, mean "
                f"{len(mean)}, var {len(var)}"
            )
        for i, (name, mu, sigma2) in enumerate(zip(names, mean, var, strict=True)):
            if not isinstance(name, str):
                raise ValueError(f"Expected `state['names'][{i}]` to be a str, got {name!r}")
            for key, value in (("mean", mu), ("var", sigma2)):
                if not (
                    isinstance(value, Tensor) and value.is_floating_point() and value.dim() == 1
                ):
                    raise ValueError(
                        f"Expected `state['{key}'][{i}]` to be a 1-D floating-point tensor, "
                        f"got {value!r}"
                    )
            if mu.shape != sigma2.shape:
                raise ValueError(
                    f"Expected `state['mean'][{i}]` and `state['var'][{i}]` to have the same "
                    f"shape, got {tuple(mu.shape)} and {tuple(sigma2.shape)}"
                )
        self._names = list(names)
        self._mean = [t.clone() for t in mean]
        self._var = [t.clone() for t in var]

    def __repr__(self) -> str:
        return (
            f"BNStatMomentum(momentum={self.momentum}, layers={len(self._mean)}, "
            f"layer_weights={self.layer_weights})"
        )

"""Mixed precision and the non-finite guard shared by every optimisation step."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, get_args

import torch

from ssdkd.methods.parallel import DataParallel

__all__ = [
    "PRECISIONS",
    "FlatSnapshot",
    "NonFiniteLossError",
    "Precision",
    "PrecisionName",
    "SlowPrecisionWarning",
]

PrecisionName = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = get_args(PrecisionName)
"""The precisions a run accepts: ``"fp32"``, ``"bf16"`` and ``"fp16"`` (autocast with a
gradient scaler)."""

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class SlowPrecisionWarning(UserWarning):
    """A precision that this device emulates slowly was chosen (fp16 on a CPU)."""


class NonFiniteLossError(FloatingPointError):
    """Losses kept coming out NaN/inf; the run stopped before they could reach the weights."""


class Precision:
    """Autocast context and a guarded, synchronisation-free optimiser step.

    ``fp32`` runs as is; ``bf16`` and ``fp16`` run the forward passes under
    :func:`torch.autocast`; ``fp16`` also scales the loss with a
    :class:`torch.amp.GradScaler` so that small gradients do not underflow (one instance
    per optimisation problem: the KD step and each synthesis hold their own, since their
    losses have different scales).

    :meth:`step` applies an update only where the loss and every gradient are finite, and
    decides that on the device: it returns the decision as a 0-dim bool tensor instead of
    reading it back, so a training loop can run many steps before one host read.

    Args:
        mode: ``"fp32"``, ``"bf16"`` or ``"fp16"``.
        device: The device the models run on.

    Examples:
        >>> net = torch.nn.Linear(2, 1)
        >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
        >>> prec = Precision("fp32", torch.device("cpu"))
        >>> with prec.autocast():
        ...     loss = net(torch.ones(1, 2)).sum()
        >>> prec.step(loss, opt).item()
        True
        >>> before = net.weight.detach().clone()
        >>> prec.step(net(torch.ones(1, 2)).sum() * float("nan"), opt).item()
        False
        >>> torch.equal(net.weight, before)
        True
    """

    def __init__(self, mode: str, device: torch.device) -> None:
        if mode not in PRECISIONS:
            raise ValueError(f"Expected `precision` to be one of {PRECISIONS}, got {mode!r}")
        self.mode = mode
        self.device = device
        self.scaler: torch.amp.GradScaler | None = (
            torch.amp.GradScaler(device.type) if mode == "fp16" else None
        )
        # Scratch buffers of the guarded step, reused from step to step (not state).
        self._workspace: dict[Any, torch.Tensor] = {}

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Run the enclosed forward passes in this precision."""
        if self.mode == "fp32":
            yield
            return
        with torch.autocast(device_type=self.device.type, dtype=_DTYPES[self.mode]):
            yield

    def step(
        self,
        loss: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        *,
        before_update: Callable[[], None] | None = None,
        parallel: DataParallel | None = None,
        average_also: Sequence[torch.Tensor] = (),
    ) -> torch.Tensor:
        """Back-propagate ``loss`` and step ``optimizer`` where loss and gradients are finite.

        The optimiser's gradients are cleared first, so each call is one complete step.
        A step with a non-finite loss or gradient (in fp16: after unscaling) leaves the
        parameters bit-identical, and the state tensors of the optimiser that live on the
        parameters' device (momentum, Adam moments, a ``capturable`` step count) are put
        back (:class:`FlatSnapshot`: a constant number of kernels per dtype, not per
        tensor), or zeroed where the skipped step created them, so only a host-side step
        counter (Adam's, without ``capturable``) moves on. Its gradients are zeroed before
        ``before_update`` reads them; without ``before_update`` they keep what the
        backward pass left. Nothing is read back to the host (in fp16 the scaler's update
        also stays on the device).

        Args:
            loss: The scalar loss.
            optimizer: The optimiser of the parameters to update.
            before_update: Called after the (masked) gradients are in place and before the
                update, e.g. to accumulate them elsewhere (first-order MAML).
            parallel: Average the gradients over its ranks before the update (one
                collective, after unscaling), and apply the step on every rank or on none:
                where any rank's loss or averaged gradient is non-finite.
            average_also: More tensors that the same collective averages in place (with
                ``parallel``), e.g. BatchNorm running statistics.

        Returns:
            A 0-dim bool tensor on the loss's device: whether the step was applied (the
            same on every rank of ``parallel``).
        """
        optimizer.zero_grad(set_to_none=True)
        scaled = loss if self.scaler is None else self.scaler.scale(loss)
        scaled.backward()
        params = [p for group in optimizer.param_groups for p in group["params"]]
        grads = [p.grad for p in params if p.grad is not None]
        # A loss that reaches no parameter records no inf check, and the scaler's update
        # would then refuse to run: there is nothing to unscale either.
        scaling = self.scaler is not None and bool(grads)
        if scaling:
            assert self.scaler is not None
            self.scaler.unscale_(optimizer)
        if parallel is not None:
            applied = parallel.average_gradients_(grads, loss, average_also)
        else:
            applied = torch.isfinite(loss.detach())
        if grads:
            applied = applied & torch.isfinite(torch.nn.utils.get_total_norm(grads))
        if before_update is not None:
            # What it reads must be finite: a skipped step's gradients become zeros.
            if grads:
                _zero_where_skipped_(grads, applied)
            before_update()
        fresh = [p for p in params if not optimizer.state.get(p)]
        saved = FlatSnapshot(_resident(optimizer, params, applied.device), self._workspace)
        optimizer.step()
        saved.restore_where_skipped_(applied)
        with torch.no_grad():
            # State the step created (the first step of a parameter) is zeroed when the
            # step is skipped: zero momentum and moments are what a fresh optimiser holds.
            for p in fresh:
                for value in optimizer.state.get(p, {}).values():
                    if isinstance(value, torch.Tensor) and value.device == applied.device:
                        value.copy_(torch.where(applied, value, torch.zeros_like(value)))
        if scaling:
            assert self.scaler is not None
            self.scaler.update()
        return applied

    def state_dict(self) -> dict[str, Any]:
        """The gradient scaler's state (empty unless ``fp16``)."""
        return {} if self.scaler is None else self.scaler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


def _resident(
    optimizer: torch.optim.Optimizer, params: list[torch.Tensor], device: torch.device
) -> list[torch.Tensor]:
    """The parameters and the optimiser's state tensors that live on ``device``."""
    tensors = [p.data for p in params]
    for p in params:
        for value in optimizer.state.get(p, {}).values():
            if isinstance(value, torch.Tensor) and value.device == device:
                tensors.append(value)
    return tensors


class FlatSnapshot:
    """A copy of many tensors, kept as one flat buffer per dtype, and their guarded restore.

    A guarded step must put back every tensor a skipped update touched. Copying and
    selecting tensor by tensor costs three small kernels per tensor (hundreds per step for
    a ResNet); here each dtype group costs a constant few — one concatenation to save, one
    to read the current values, one ``torch.where`` and one multi-tensor copy back —
    whatever the number of tensors. ``torch.where`` selects values bit for bit, so an
    applied step is unchanged, and a skipped one may leave NaN behind in the tensors
    before the restore.

    Args:
        tensors: The tensors to save (parameters, optimiser state, buffers).
        workspace: Where the flat buffers are kept between snapshots of tensors of the
            same sizes (a dict the caller owns; default: new buffers every time).

    Examples:
        >>> a, b = torch.ones(2), torch.zeros(3)
        >>> saved = FlatSnapshot([a, b])
        >>> _ = a.add_(1), b.fill_(float("nan"))
        >>> saved.restore_where_skipped_(torch.tensor(False))
        >>> a, b
        (tensor([1., 1.]), tensor([0., 0., 0.]))
    """

    def __init__(
        self, tensors: list[torch.Tensor], workspace: dict[Any, torch.Tensor] | None = None
    ) -> None:
        self._groups = _by_dtype_and_device(tensors)
        self._workspace = workspace
        self._saved = [_flat(group, self._scratch(group, "saved")) for group in self._groups]

    def _scratch(self, group: list[torch.Tensor], role: str) -> torch.Tensor | None:
        """A flat buffer of ``group``'s size kept in the workspace across calls (``None``
        without a workspace): large buffers allocated once are not paged in again on
        every step."""
        if self._workspace is None:
            return None
        size = sum(t.numel() for t in group)
        key = (role, group[0].dtype, group[0].device, size)
        buffer = self._workspace.get(key)
        if buffer is None:
            buffer = torch.empty(size, dtype=group[0].dtype, device=group[0].device)
            self._workspace[key] = buffer
        return buffer

    @torch.no_grad()
    def restore_where_skipped_(self, applied: torch.Tensor) -> None:
        """Put back the saved values where ``applied`` (a 0-dim bool) is false."""
        for group, saved in zip(self._groups, self._saved, strict=True):
            current = _flat(group, self._scratch(group, "current"))
            torch.where(applied.to(current.device), current, saved, out=current)
            _scatter_flat_(group, current)


@torch.no_grad()
def _zero_where_skipped_(tensors: list[torch.Tensor], applied: torch.Tensor) -> None:
    """Set ``tensors`` to 0 where ``applied`` is false, with a constant number of kernels
    per dtype and device."""
    for group in _by_dtype_and_device(tensors):
        current = _flat(group)
        zero = torch.zeros((), dtype=current.dtype, device=current.device)
        torch.where(applied.to(current.device), current, zero, out=current)
        _scatter_flat_(group, current)


def _by_dtype_and_device(tensors: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    groups: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for tensor in tensors:
        groups.setdefault((tensor.dtype, tensor.device), []).append(tensor)
    return list(groups.values())


def _flat(tensors: list[torch.Tensor], out: torch.Tensor | None = None) -> torch.Tensor:
    """The tensors' values concatenated into one 1-D tensor, ``out`` if given (one kernel)."""
    pieces = [t.detach().reshape(-1) for t in tensors]
    if out is None:
        return torch.cat(pieces)
    return torch.cat(pieces, out=out)


def _scatter_flat_(tensors: list[torch.Tensor], flat: torch.Tensor) -> None:
    """Copy consecutive pieces of ``flat`` into ``tensors`` (one multi-tensor kernel)."""
    pieces = flat.split([t.numel() for t in tensors])
    torch._foreach_copy_(
        [t.detach() for t in tensors],
        [piece.view(t.shape) for piece, t in zip(pieces, tensors, strict=True)],
    )

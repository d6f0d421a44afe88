"""Mixed precision and the non-finite-loss guard shared by every optimisation step."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal, get_args

import torch

__all__ = ["PRECISIONS", "NonFiniteLossError", "Precision", "PrecisionName"]

PrecisionName = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = get_args(PrecisionName)

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class NonFiniteLossError(FloatingPointError):
    """Losses kept coming out NaN/inf; the run stopped before they could reach the weights."""


class Precision:
    """Autocast context and a guarded optimiser step for one precision mode.

    ``fp32`` runs as is; ``bf16`` and ``fp16`` run the forward passes under
    :func:`torch.autocast`; ``fp16`` also scales the loss with a
    :class:`torch.amp.GradScaler` so that small gradients do not underflow.

    :meth:`step` refuses a non-finite loss: it clears the gradients and reports the step as
    skipped instead of letting NaN/inf reach the weights. This check reads one scalar back
    to the host per step (the same synchronisation a gradient scaler performs).

    Args:
        mode: ``"fp32"``, ``"bf16"`` or ``"fp16"``.
        device: The device the models run on.

    Example:
        >>> net = torch.nn.Linear(2, 1)
        >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
        >>> prec = Precision("fp32", torch.device("cpu"))
        >>> with prec.autocast():
        ...     loss = net(torch.ones(1, 2)).sum()
        >>> prec.step(loss, opt)
        True
        >>> prec.step(torch.tensor(float("nan"), requires_grad=True), opt)
        False
    """

    def __init__(self, mode: str, device: torch.device) -> None:
        if mode not in PRECISIONS:
            raise ValueError(f"Expected `precision` to be one of {PRECISIONS}, got {mode!r}")
        self.mode = mode
        self.device = device
        self.scaler: torch.amp.GradScaler | None = (
            torch.amp.GradScaler(device.type) if mode == "fp16" else None
        )

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Run the enclosed forward passes in this precision."""
        if self.mode == "fp32":
            yield
            return
        with torch.autocast(device_type=self.device.type, dtype=_DTYPES[self.mode]):
            yield

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> bool:
        """Back-propagate ``loss`` and step ``optimizer`` unless the loss is not finite.

        The optimiser's gradients are zeroed first, so each call is one complete step.

        Returns:
            ``True`` if the step was applied, ``False`` if it was skipped because the loss
            (or, in fp16, a scaled gradient) was not finite.
        """
        optimizer.zero_grad(set_to_none=True)
        if not bool(torch.isfinite(loss.detach()).all()):
            return False
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return True
        self.scaler.scale(loss).backward()
        scale_before = self.scaler.get_scale()
        self.scaler.step(optimizer)
        self.scaler.update()
        # The scaler skips the step and lowers its scale when it found inf/NaN gradients.
        return self.scaler.get_scale() >= scale_before

    def state_dict(self) -> dict[str, Any]:
        """The gradient scaler's state (empty unless ``fp16``)."""
        return {} if self.scaler is None else self.scaler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
